// Conv over 1 to 8 spatial dims with groups, strides, dilations, pads and auto_pad: im2col and a
// GEMM per (image, group). float16/bfloat16 are computed in float.
#include <omp.h>

#include <algorithm>
#include <memory>

#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"
#include "providers/cpu/nn/conv_util.h"
#include "providers/cpu/nn/dnnl_conv.h"

namespace graft {
namespace {

struct ConvProblem {
  int64_t batch, channels, maps, group;
  WindowGeometry g;
};

// y[N, M, out...] = conv(x[N, C, in...], w[M, C/G, k...]) + b[M].
template <typename T>
void run_conv(const ConvProblem& p, const T* x, const T* w, const T* b, T* y) {
  const WindowGeometry& g = p.g;
  const int64_t cg = p.channels / p.group, mg = p.maps / p.group;
  const int64_t kernel_size = shape_size(g.kernel), in_size = shape_size(g.in);
  const int64_t out_size = shape_size(g.out), depth = cg * kernel_size;
  bool pointwise = kernel_size == 1;
  for (size_t i = 0; i < g.rank(); ++i)
    pointwise = pointwise && g.strides[i] == 1 && g.pads[i] == 0 && g.pads[g.rank() + i] == 0;
  const int64_t units = p.batch * p.group;

  auto run_unit = [&](int64_t u, T* col) {
    const int64_t n = u / p.group, gi = u % p.group;
    const T* xg = x + (n * p.channels + gi * cg) * in_size;
    T* yg = y + (n * p.maps + gi * mg) * out_size;
    const T* cols = xg;
    if (!pointwise) {
      cpu::im2col(xg, cg, g, col);
      cols = col;
    }
    // The bias is written first and the product accumulated onto it.
    if (b != nullptr) {
#pragma omp parallel for if (mg * out_size > (1 << 16) && !omp_in_parallel())
      for (int64_t m = 0; m < mg; ++m) std::fill_n(yg + m * out_size, out_size, b[gi * mg + m]);
    }
    cpu::gemm<T>(false, false, mg, out_size, depth, w + gi * mg * depth, cols, yg, b != nullptr);
  };
  const size_t col_size = pointwise ? 0 : static_cast<size_t>(depth * out_size);
  // Many independent (image, group) units: one per thread, each GEMM single-threaded. Otherwise
  // the units run in turn and im2col and the GEMM use all threads.
  if (units > 1 && units >= omp_get_max_threads()) {
#pragma omp parallel
    {
      // Scratch every element of which is written before it is read.
      const auto col = std::make_unique_for_overwrite<T[]>(col_size);
#pragma omp for schedule(dynamic)
      for (int64_t u = 0; u < units; ++u) run_unit(u, col.get());
    }
  } else {
    const auto col = std::make_unique_for_overwrite<T[]>(col_size);
    for (int64_t u = 0; u < units; ++u) run_unit(u, col.get());
  }
}

class Conv : public Kernel {
 public:
  explicit Conv(const KernelInfo& info) : attrs_(info), group_(info.attr_int("group", 1)) {
    if (group_ <= 0) info.fail("group must be positive");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    const Shape in = spatial_dims(x, ctx);
    if (in.size() > kMaxSpatialDims) ctx.fail("too many spatial dims");
    if (w.rank() != x.rank())
      ctx.fail("W " + shape_to_string(w.shape()) + " must have the rank of X " +
               shape_to_string(x.shape()));
    if (w.dtype() != x.dtype()) ctx.fail("W must have X's dtype");
    ConvProblem p{x.dim(0), x.dim(1), w.dim(0), group_, {}};
    if (p.channels % group_ != 0 || p.maps % group_ != 0 || w.dim(1) * group_ != p.channels)
      ctx.fail("X has " + std::to_string(p.channels) + " channels and W " +
               shape_to_string(w.shape()) + ", which does not fit group " + std::to_string(group_));
    const Shape w_kernel(w.shape().begin() + 2, w.shape().end());
    if (!attrs_.kernel_shape.empty() && attrs_.kernel_shape != w_kernel)
      ctx.fail("kernel_shape does not match W's spatial dims");
    p.g = attrs_.resolve(in, w_kernel, ctx);
    const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    if (b != nullptr && (b->rank() != 1 || b->dim(0) != p.maps || b->dtype() != x.dtype()))
      ctx.fail("B must be a 1-D tensor of " + std::to_string(p.maps) + " elements of X's dtype");
    Shape out_shape = {p.batch, p.maps};
    out_shape.insert(out_shape.end(), p.g.out.begin(), p.g.out.end());
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    if (y.size() == 0) return;

    if (x.dtype() == DType::Float && p.g.rank() == 2) {
      // 2-D float convolutions go to oneDNN.
      cpu::DnnlConvShape s{p.batch, p.channels, p.maps, p.group, {}, {}, {}, {}, {}, {}};
      for (size_t i = 0; i < 2; ++i) {
        s.in[i] = p.g.in[i];
        s.kernel[i] = p.g.kernel[i];
        s.out[i] = p.g.out[i];
        s.strides[i] = p.g.strides[i];
        s.dilations[i] = p.g.dilations[i];
        s.pads[i] = p.g.pads[i];
        s.pads[i + 2] = p.g.pads[i + 2];
      }
      if (cpu::dnnl_conv_supported(s)) {
        cpu::dnnl_conv_forward(s, x.data<float>(), w.data<float>(), b ? b->data<float>() : nullptr,
                               y.data<float>());
        return;
      }
    }
    const bool ran = cpu::run_in_float(
        x, w, b, y, [&](const auto* xs, const auto* ws, const auto* bs, auto* ys) {
          run_conv(p, xs, ws, bs, ys);
        });
    if (!ran) ctx.fail(std::string("unsupported dtype ") + dtype_name(x.dtype()));
  }

 private:
  WindowAttrs attrs_;
  int64_t group_;
};

}  // namespace

GRAFT_CPU_KERNELS(conv) { reg.add({"", "Conv", 1, 1 << 30, kFloatTypes, 0, make<Conv>}); }

}  // namespace graft
