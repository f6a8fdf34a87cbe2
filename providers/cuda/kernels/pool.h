// MaxPool (with its Indices output and storage_order), AveragePool (count_include_pad,
// ceil_mode, dilations), GlobalAveragePool, GlobalMaxPool and com.graft MaxPoolGrad.
//
// The backend's pooling call (cuDNN) takes the windows it computes as ONNX does
// (PoolDesc::cudnn_ready). The others go to PoolWindowFn, one thread per output walking its
// window with the CPU provider's rules: dilated windows, pads whose begin and end differ,
// ceil_mode's extra windows, and MaxPool's Indices, which cuDNN does not report. MaxPoolGrad
// finds each window's first maximum as MaxPool reports it, then each input element gathers the
// dY of the windows whose maximum it is (no atomics, so the sums are deterministic); cuDNN's
// pooling backward would need Y and leaves the receiver of a tie unspecified. The global pools
// are row reductions over each (image, channel) plane.
#pragma once

#include <cmath>

#include "ir/names.h"
#include "providers/cuda/kernels/dnn.h"

namespace graft::cuda {

GRAFT_HD int64_t pool_ceil_div(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

// Pools one output element per call. Max: over the taps inside x; no tap inside gives 0. With
// `indices` the first maximum wins (its flat position in x, or in column-major order within the
// plane when `column_major`; -1 when no tap is inside), and `y` may be null. Average: the
// divisor counts the taps inside x (AverageExcludePad) or inside the padded x
// (AverageIncludePad); none gives NaN.
template <typename T>
struct PoolWindowFn {
  PoolDesc d;
  const T* x;
  T* y;
  int64_t* indices;
  bool column_major;

  GRAFT_HD void operator()(int64_t i) const {
    using A = Acc<T>;
    const int64_t out_size = d.out_size(), in_size = d.in_size();
    const int64_t plane = i / out_size;
    int64_t rest = i - plane * out_size;
    int64_t start[kDnnDims], lo[kDnnDims], hi[kDnnDims], padded[kDnnDims];
    for (int k = kDnnDims - 1; k >= 0; --k) {
      const int64_t o = rest % d.out[k];
      rest /= d.out[k];
      start[k] = o * d.strides[k] - d.pad_begin[k];
      lo[k] = start[k] >= 0 ? 0 : pool_ceil_div(-start[k], d.dilations[k]);
      hi[k] = pool_ceil_div(d.in[k] - start[k], d.dilations[k]);
      hi[k] = hi[k] < d.kernel[k] ? hi[k] : d.kernel[k];
      padded[k] = pool_ceil_div(d.in[k] + d.pad_end[k] - start[k], d.dilations[k]);
      padded[k] = padded[k] < d.kernel[k] ? padded[k] : d.kernel[k];
    }
    const T* xp = x + plane * in_size;
    const bool max = d.mode == PoolMode::Max;
    A acc = max ? -static_cast<A>(INFINITY) : A(0);
    int64_t best_at = -1, count = 0;
    for (int64_t t0 = lo[0]; t0 < hi[0]; ++t0) {
      const int64_t p0 = start[0] + t0 * d.dilations[0];
      for (int64_t t1 = lo[1]; t1 < hi[1]; ++t1) {
        const int64_t p1 = p0 * d.in[1] + start[1] + t1 * d.dilations[1];
        for (int64_t t2 = lo[2]; t2 < hi[2]; ++t2) {
          const int64_t at = p1 * d.in[2] + start[2] + t2 * d.dilations[2];
          const A v = widen(xp[at]);
          ++count;
          if (!max) {
            acc += v;
          } else if (v > acc || (indices != nullptr && best_at < 0)) {
            acc = v;
            best_at = at;
          }
        }
      }
    }
    if (max) {
      if (count == 0) acc = A(0);
      if (y != nullptr) y[i] = narrow<T>(acc);
      if (indices != nullptr) indices[i] = best_at < 0 ? -1 : plane * in_size + position(best_at);
      return;
    }
    if (d.mode == PoolMode::AverageIncludePad) count = padded[0] * padded[1] * padded[2];
    y[i] = narrow<T>(count > 0 ? acc / static_cast<A>(count) : static_cast<A>(NAN));
  }

 private:
  // An in-plane offset in the order the Indices output reports.
  GRAFT_HD int64_t position(int64_t offset) const {
    if (!column_major) return offset;
    const int64_t p2 = offset % d.in[2], p1 = (offset / d.in[2]) % d.in[1];
    const int64_t p0 = offset / (d.in[2] * d.in[1]);
    return p0 + (p1 + p2 * d.in[1]) * d.in[0];
  }
};

// dx[i] = the sum of dy over the windows whose maximum (indices, flat over x) is element i.
template <typename T>
struct MaxPoolGradFn {
  PoolDesc d;
  const T* dy;
  const int64_t* indices;
  T* dx;

  GRAFT_HD void operator()(int64_t i) const {
    const int64_t in_size = d.in_size(), out_size = d.out_size();
    const int64_t plane = i / in_size;
    int64_t rest = i - plane * in_size, pos[kDnnDims];
    for (int k = kDnnDims - 1; k >= 0; --k) {
      pos[k] = rest % d.in[k];
      rest /= d.in[k];
    }
    const int64_t* ip = indices + plane * out_size;
    const T* gp = dy + plane * out_size;
    Acc<T> sum = 0;
    // Output o of dim k holds pos[k] at tap t when o * stride + t * dilation = pos + pad.
    for (int64_t t0 = 0; t0 < d.kernel[0]; ++t0) {
      const int64_t o0 = window_of(0, pos[0], t0);
      if (o0 < 0) continue;
      for (int64_t t1 = 0; t1 < d.kernel[1]; ++t1) {
        const int64_t o1 = window_of(1, pos[1], t1);
        if (o1 < 0) continue;
        for (int64_t t2 = 0; t2 < d.kernel[2]; ++t2) {
          const int64_t o2 = window_of(2, pos[2], t2);
          if (o2 < 0) continue;
          const int64_t o = (o0 * d.out[1] + o1) * d.out[2] + o2;
          if (ip[o] == i) sum += widen(gp[o]);
        }
      }
    }
    dx[i] = narrow<T>(sum);
  }

 private:
  // The output of dim k whose window holds `pos` at tap t, or -1.
  GRAFT_HD int64_t window_of(int k, int64_t pos, int64_t t) const {
    const int64_t shifted = pos + d.pad_begin[k] - t * d.dilations[k];
    if (shifted < 0 || shifted % d.strides[k] != 0) return -1;
    const int64_t o = shifted / d.strides[k];
    return o < d.out[k] ? o : -1;
  }
};

// GlobalAveragePool and GlobalMaxPool, one row per plane. The maximum propagates NaN, as the
// CPU provider's does.
template <typename T, bool Max>
struct GlobalPoolOp {
  using Acc = cuda::Acc<T>;
  const T* x;
  T* y;
  int64_t size;
  GRAFT_HD Acc identity() const { return Max ? -static_cast<Acc>(INFINITY) : Acc(0); }
  GRAFT_HD Acc load(int64_t r, int64_t j) const { return widen(x[r * size + j]); }
  GRAFT_HD Acc combine(Acc a, Acc b) const {
    if (!Max) return a + b;
    if (math_isnan(a) || math_isnan(b)) return a + b;
    return a < b ? b : a;
  }
  GRAFT_HD void store(int64_t r, Acc acc) const {
    y[r] = narrow<T>(Max ? acc : acc / static_cast<Acc>(size));
  }
};

template <class B>
class PoolKernel final : public DeviceKernel<B> {
 public:
  PoolKernel(const KernelInfo& info, bool max)
      : DeviceKernel<B>(info),
        attrs_(info),
        column_major_(info.attr_int("storage_order", 0) != 0),
        mode_(max ? PoolMode::Max
                  : (info.attr_int("count_include_pad", 0) != 0 ? PoolMode::AverageIncludePad
                                                                : PoolMode::AverageExcludePad)) {
    if (attrs_.kernel_shape.empty()) info.fail("attribute 'kernel_shape' is required");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const PoolDesc d = pool_desc(attrs_.resolve(spatial_dims(x, ctx), attrs_.kernel_shape, ctx),
                                 mode_, x.dtype(), x.dim(0), x.dim(1), ctx.describe());
    Shape out_shape = {d.batch, d.channels};
    out_shape.insert(out_shape.end(), d.out, d.out + d.spatial);
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    int64_t* indices = nullptr;
    if (ctx.num_outputs() > 1 && ctx.has_output(1)) {
      if (mode_ != PoolMode::Max) ctx.fail("only MaxPool has an Indices output");
      indices = ctx.output(1, DType::Int64, out_shape).data<int64_t>();
    }
    if (y.size() == 0) return;
    if (indices == nullptr && d.cudnn_ready()) {
      this->backend().pool_forward(d, x.raw(), y.raw());
      return;
    }
    dispatch_device_float(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      this->backend().for_each(
          y.size(), PoolWindowFn<T>{d, x.data<T>(), y.data<T>(), indices, column_major_});
    });
  }

 private:
  WindowAttrs attrs_;
  bool column_major_;
  PoolMode mode_;
};

template <class B, bool Max>
class GlobalPoolKernel final : public DeviceKernel<B> {
 public:
  explicit GlobalPoolKernel(const KernelInfo& info) : DeviceKernel<B>(info) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Shape in = spatial_dims(x, ctx);
    Shape out_shape = {x.dim(0), x.dim(1)};
    out_shape.insert(out_shape.end(), in.size(), 1);
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    const int64_t size = shape_size(in);
    dispatch_device_float(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      this->backend().reduce_rows(y.size(), size,
                                  GlobalPoolOp<T, Max>{x.data<T>(), y.data<T>(), size});
    });
  }
};

// com.graft MaxPoolGrad (dY, X) => dX with MaxPool's window attributes.
template <class B>
class MaxPoolGradKernel final : public DeviceKernel<B> {
 public:
  explicit MaxPoolGradKernel(const KernelInfo& info) : DeviceKernel<B>(info), attrs_(info) {
    if (attrs_.kernel_shape.empty()) info.fail("attribute 'kernel_shape' is required");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& dy = ctx.input(0);
    const Tensor& x = ctx.input(1);
    if (dy.dtype() != x.dtype()) ctx.fail("dY and X must share a type");
    const PoolDesc d = pool_desc(attrs_.resolve(spatial_dims(x, ctx), attrs_.kernel_shape, ctx),
                                 PoolMode::Max, x.dtype(), x.dim(0), x.dim(1), ctx.describe());
    Shape out_shape = {d.batch, d.channels};
    out_shape.insert(out_shape.end(), d.out, d.out + d.spatial);
    if (dy.shape() != out_shape)
      ctx.fail("dY " + shape_to_string(dy.shape()) + " is not the pooled shape " +
               shape_to_string(out_shape));
    Tensor& dx = ctx.output(0, x.dtype(), x.shape());
    if (dx.size() == 0) return;
    B& backend = this->backend();
    Tensor indices = Tensor::empty(DType::Int64, out_shape, backend.allocator());
    dispatch_device_float(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      backend.for_each(dy.size(),
                       PoolWindowFn<T>{d, x.data<T>(), nullptr, indices.data<int64_t>(), false});
      backend.for_each(dx.size(),
                       MaxPoolGradFn<T>{d, dy.data<T>(), indices.data<int64_t>(), dx.data<T>()});
    });
  }

 private:
  WindowAttrs attrs_;
};

template <class B>
void register_pool(KernelRegistry& reg) {
  constexpr int kAny = 1 << 30;
  reg.add({"", "MaxPool", 1, kAny, kDeviceFloatTypes, 0,
           [](const KernelInfo& info) { return std::make_unique<PoolKernel<B>>(info, true); }});
  reg.add({"", "AveragePool", 1, kAny, kDeviceFloatTypes, 0,
           [](const KernelInfo& info) { return std::make_unique<PoolKernel<B>>(info, false); }});
  reg.add(
      {"", "GlobalAveragePool", 1, kAny, kDeviceFloatTypes, 0, make<GlobalPoolKernel<B, false>>});
  reg.add({"", "GlobalMaxPool", 1, kAny, kDeviceFloatTypes, 0, make<GlobalPoolKernel<B, true>>});
  reg.add(
      {names::kDomain, "MaxPoolGrad", 1, kAny, kDeviceFloatTypes, 0, make<MaxPoolGradKernel<B>>});
}

}  // namespace graft::cuda
