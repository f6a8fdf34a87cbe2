// Convolution, pooling and batch normalization as the backend's library calls take them: the
// descriptors the kernel templates (conv.h, pool.h, batch_norm.h) fill from shapes and
// attributes, and the few functors of the work around those calls (explicit padding, bias,
// parameter conversion). CudaBackend runs the calls through cuDNN's legacy API
// (providers/cuda/cudnn.cu); HostBackend through reference loops (tests/providers/cuda_host/
// host_dnn.cc) that take exactly what cuDNN takes, so the host tests check the descriptors.
//
// What a backend offers (pointers are device memory of the descriptor's dtype; `P` is the
// parameter type of a BatchNormDesc):
//
//   void conv_forward(const ConvDesc& d, const void* x, const void* w, void* y);
//       y = conv(x, w), written whole.
//   void conv_backward_data(const ConvDesc& d, const void* w, const void* dy, void* dx);
//       dx = the adjoint of conv_forward in x applied to dy (ConvTranspose's forward pass).
//   void conv_backward_filter(const ConvDesc& d, const void* x, const void* dy, void* dw);
//       dw = the adjoint in w.
//     Each takes symmetric pads only (d.symmetric()) and d.out as the pads, strides and
//     dilations give it (conv_output_dim); the kernels pad explicitly otherwise.
//   void pool_forward(const PoolDesc& d, const void* x, void* y);
//       max or average pooling of a window d.cudnn_ready() accepts.
//   void batch_norm_inference(const BatchNormDesc& d, const void* x, const void* scale,
//                             const void* bias, const void* mean, const void* var, void* y);
//   void batch_norm_training(const BatchNormDesc& d, const void* x, const void* scale,
//                            const void* bias, void* y, void* saved_mean, void* saved_inv_std);
//       normalizes x by its per-channel batch statistics, which it returns as P: the mean and
//       1 / sqrt(biased variance + epsilon).
//   void batch_norm_backward(const BatchNormDesc& d, const void* x, const void* dy,
//                            const void* scale, void* dx, void* dscale, void* dbias);
//       the gradients of batch_norm_training's y (statistics recomputed from x); dscale and
//       dbias are P.
//
// Every call fails with an exception naming the descriptor's node (`who`), the library and its
// status; none keeps a pointer.
#pragma once

#include <algorithm>
#include <string>

#include "exec/window.h"
#include "providers/cuda/kernels/backend.h"
#include "providers/cuda/kernels/elementwise.h"

namespace graft::cuda {

// Spatial dims the descriptors hold (cuDNN's legacy calls go to 3). Unused trailing dims are
// 1 (pads 0), so a loop over all three serves every rank.
inline constexpr int kDnnDims = 3;

// The number of windows a dim of `in` elements gives under the floor rule.
GRAFT_HD int64_t conv_output_dim(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                                 int64_t pad_begin, int64_t pad_end) {
  return (in + pad_begin + pad_end - (kernel - 1) * dilation - 1) / stride + 1;
}

// y[N, K, out...] = sum over the channels c of k's group and the kernel taps t of
//   x[N, c, o * stride + t * dilation - pad_begin] * w[k, c - group start, t]
// (reads outside x are zeros). Groups split C and K evenly.
struct ConvDesc {
  const char* who = "";        // the node, for errors (ctx.describe(): outlives the calls)
  DType dtype = DType::Float;  // of x, w and y
  bool tf32 = false;           // float32 only: the library may round x and w to TF32
  int spatial = 0;             // 1 to kDnnDims
  int64_t batch = 0, channels = 0, maps = 0, groups = 1;
  int64_t in[kDnnDims] = {1, 1, 1};
  int64_t kernel[kDnnDims] = {1, 1, 1};
  int64_t out[kDnnDims] = {1, 1, 1};
  int64_t strides[kDnnDims] = {1, 1, 1};
  int64_t dilations[kDnnDims] = {1, 1, 1};
  int64_t pad_begin[kDnnDims] = {0, 0, 0};
  int64_t pad_end[kDnnDims] = {0, 0, 0};

  bool symmetric() const {
    for (int i = 0; i < kDnnDims; ++i)
      if (pad_begin[i] != pad_end[i] || pad_begin[i] < 0) return false;
    return true;
  }
  Shape x_shape() const { return with_spatial({batch, channels}, in); }
  Shape w_shape() const { return with_spatial({maps, channels / groups}, kernel); }
  Shape y_shape() const { return with_spatial({batch, maps}, out); }

 private:
  Shape with_spatial(Shape lead, const int64_t* dims) const {
    lead.insert(lead.end(), dims, dims + spatial);
    return lead;
  }
};

// The descriptor of a convolution of `g`'s geometry for the node `who` (a string that outlives
// the descriptor, such as ctx.describe()), with TF32 for float32 where `use_tf32` (the
// provider's option). Fails naming the node past kDnnDims spatial dims.
inline ConvDesc conv_desc(const WindowGeometry& g, DType dtype, int64_t batch, int64_t channels,
                          int64_t maps, int64_t groups, bool use_tf32, const std::string& who) {
  if (g.rank() < 1 || g.rank() > static_cast<size_t>(kDnnDims))
    throw InvalidArgument(who + ": the CUDA provider convolves over 1 to 3 spatial dims, not " +
                          std::to_string(g.rank()));
  ConvDesc d;
  d.who = who.c_str();
  d.dtype = dtype;
  d.tf32 = use_tf32 && dtype == DType::Float;
  d.spatial = static_cast<int>(g.rank());
  d.batch = batch;
  d.channels = channels;
  d.maps = maps;
  d.groups = groups;
  for (size_t i = 0; i < g.rank(); ++i) {
    d.in[i] = g.in[i];
    d.kernel[i] = g.kernel[i];
    d.out[i] = g.out[i];
    d.strides[i] = g.strides[i];
    d.dilations[i] = g.dilations[i];
    d.pad_begin[i] = g.pads[i];
    d.pad_end[i] = g.pads[g.rank() + i];
  }
  return d;
}

// cuDNN takes one pad per dim for both ends. A convolution with different begin and end pads
// runs on an input padded explicitly by the difference: `padded` reads x through `extra_begin`
// more zeros before and `extra_end` after each dim and pads min(begin, end) itself.
struct SymmetricConv {
  ConvDesc padded;
  int64_t extra_begin[kDnnDims] = {0, 0, 0};
};

inline SymmetricConv symmetric_conv(const ConvDesc& d) {
  SymmetricConv s{d};
  for (int i = 0; i < kDnnDims; ++i) {
    const int64_t common = std::min(d.pad_begin[i], d.pad_end[i]);
    s.extra_begin[i] = d.pad_begin[i] - common;
    s.padded.in[i] = d.in[i] + d.pad_begin[i] + d.pad_end[i] - 2 * common;
    s.padded.pad_begin[i] = s.padded.pad_end[i] = common;
  }
  return s;
}

// dst[plane, o...] = src[plane, o + offset...] where that lies inside src, else zero: explicit
// padding (negative offsets) and cropping (positive ones) of every [N * C] plane.
template <typename T>
struct WindowCopyFn {
  const T* src;
  T* dst;
  int64_t src_dims[kDnnDims];
  int64_t dst_dims[kDnnDims];
  int64_t offset[kDnnDims];
  GRAFT_HD void operator()(int64_t i) const {
    int64_t rest = i, at = 0, stride = 1;
    bool inside = true;
    for (int d = kDnnDims - 1; d >= 0; --d) {
      const int64_t q = rest / dst_dims[d];
      const int64_t pos = rest - q * dst_dims[d] + offset[d];
      rest = q;
      inside = inside && pos >= 0 && pos < src_dims[d];
      at += pos * stride;
      stride *= src_dims[d];
    }
    dst[i] = inside ? src[rest * stride + at] : narrow<T>(0.0f);
  }
};

// Runs WindowCopyFn over `planes` planes from `src` (spatial dims `src_dims`) into `dst`.
template <class B>
void copy_window(B& backend, DType dtype, int64_t planes, const void* src, const int64_t* src_dims,
                 void* dst, const int64_t* dst_dims, const int64_t* offset, const char* who) {
  dispatch_device_float(dtype, who, [&](auto tag) {
    using T = typename decltype(tag)::type;
    WindowCopyFn<T> fn{static_cast<const T*>(src), static_cast<T*>(dst), {}, {}, {}};
    int64_t size = planes;
    for (int d = 0; d < kDnnDims; ++d) {
      fn.src_dims[d] = src_dims[d];
      fn.dst_dims[d] = dst_dims[d];
      fn.offset[d] = offset[d];
      size *= dst_dims[d];
    }
    backend.for_each(size, fn);
  });
}

// y[n, k, ...] += b[k] over `size` elements of `spatial` positions per channel.
template <typename T>
struct BiasAddFn {
  const T* b;
  T* y;
  int64_t maps, spatial;
  GRAFT_HD void operator()(int64_t i) const {
    y[i] = narrow<T>(widen(y[i]) + widen(b[(i / spatial) % maps]));
  }
};

// db[k] = sum of dy[n, k, ...] over the batch and the positions, for reduce_rows (rows are
// the maps, columns the batch * positions).
template <typename T>
struct BiasGradOp {
  using Acc = cuda::Acc<T>;
  const T* dy;
  T* db;
  int64_t maps, spatial;
  GRAFT_HD Acc identity() const { return Acc(0); }
  GRAFT_HD Acc load(int64_t r, int64_t j) const {
    const int64_t n = j / spatial;
    return widen(dy[(n * maps + r) * spatial + (j - n * spatial)]);
  }
  GRAFT_HD Acc combine(Acc a, Acc b) const { return a + b; }
  GRAFT_HD void store(int64_t r, Acc acc) const { db[r] = narrow<T>(acc); }
};

// Max pooling, or average pooling dividing by the taps inside the padded input (include) or
// inside the input (exclude).
enum class PoolMode { Max, AverageIncludePad, AverageExcludePad };

// Windows over the spatial dims of x[N, C, in...] giving y[N, C, out...]: output o of a dim
// covers input positions o * stride - pad_begin + t * dilation for t in [0, kernel).
struct PoolDesc {
  const char* who = "";  // as ConvDesc::who
  PoolMode mode = PoolMode::Max;
  DType dtype = DType::Float;
  int spatial = 0;  // 1 to kDnnDims
  int64_t batch = 0, channels = 0;
  int64_t in[kDnnDims] = {1, 1, 1};
  int64_t kernel[kDnnDims] = {1, 1, 1};
  int64_t out[kDnnDims] = {1, 1, 1};
  int64_t strides[kDnnDims] = {1, 1, 1};
  int64_t dilations[kDnnDims] = {1, 1, 1};
  int64_t pad_begin[kDnnDims] = {0, 0, 0};
  int64_t pad_end[kDnnDims] = {0, 0, 0};

  GRAFT_HD int64_t in_size() const { return in[0] * in[1] * in[2]; }
  GRAFT_HD int64_t out_size() const { return out[0] * out[1] * out[2]; }
  // What cuDNN's pooling computes as ONNX does: no dilation, one pad per dim smaller than the
  // window, and the floor rule's output dims (ceil_mode's extra windows and the divisor of
  // those that end in no padding differ). The rest goes to PoolWindowFn.
  bool cudnn_ready() const {
    for (int i = 0; i < kDnnDims; ++i) {
      if (dilations[i] != 1 || pad_begin[i] != pad_end[i] || pad_begin[i] >= kernel[i] ||
          out[i] != conv_output_dim(in[i], kernel[i], strides[i], 1, pad_begin[i], pad_end[i]))
        return false;
    }
    return true;
  }
};

inline PoolDesc pool_desc(const WindowGeometry& g, PoolMode mode, DType dtype, int64_t batch,
                          int64_t channels, const std::string& who) {
  if (g.rank() < 1 || g.rank() > static_cast<size_t>(kDnnDims))
    throw InvalidArgument(who + ": the CUDA provider pools over 1 to 3 spatial dims, not " +
                          std::to_string(g.rank()));
  PoolDesc d;
  d.who = who.c_str();
  d.mode = mode;
  d.dtype = dtype;
  d.spatial = static_cast<int>(g.rank());
  d.batch = batch;
  d.channels = channels;
  for (size_t i = 0; i < g.rank(); ++i) {
    d.in[i] = g.in[i];
    d.kernel[i] = g.kernel[i];
    d.out[i] = g.out[i];
    d.strides[i] = g.strides[i];
    d.dilations[i] = g.dilations[i];
    d.pad_begin[i] = g.pads[i];
    d.pad_end[i] = g.pads[g.rank() + i];
  }
  return d;
}

// Batch normalization of x[N, C, spatial] per channel. cuDNN takes the parameters (scale, bias,
// mean, variance, the saved statistics and their gradients) as float for float and 16-bit x,
// as double for double x.
struct BatchNormDesc {
  const char* who = "";              // as ConvDesc::who
  DType dtype = DType::Float;        // x, y, dx, dy
  DType param_dtype = DType::Float;  // the rest
  int64_t batch = 0, channels = 0, spatial = 1;
  double epsilon = 1e-5;
};

inline DType batch_norm_param_dtype(DType x) {
  return x == DType::Double ? DType::Double : DType::Float;
}

// `t` as `dtype` on the device: `t` itself when it has it, else a converted copy.
template <class B>
Tensor device_as(B& backend, const Tensor& t, DType dtype, const char* who) {
  if (t.dtype() == dtype) return t;
  Tensor out = Tensor::empty(dtype, t.shape(), backend.allocator());
  dispatch_device_float(t.dtype(), who, [&](auto from) {
    using From = typename decltype(from)::type;
    dispatch_device_float(dtype, who, [&](auto into) {
      using To = typename decltype(into)::type;
      backend.for_each(t.size(), CastFn<From, To>{t.data<From>(), out.data<To>()});
    });
  });
  return out;
}

// Copies `src` into `dst` (same shape), converting the dtype.
template <class B>
void convert_into(B& backend, const Tensor& src, Tensor& dst, const char* who) {
  if (src.dtype() == dst.dtype()) {
    backend.copy(dst.raw(), src.raw(), src.nbytes());
    return;
  }
  dispatch_device_float(src.dtype(), who, [&](auto from) {
    using From = typename decltype(from)::type;
    dispatch_device_float(dst.dtype(), who, [&](auto into) {
      using To = typename decltype(into)::type;
      backend.for_each(src.size(), CastFn<From, To>{src.data<From>(), dst.data<To>()});
    });
  });
}

}  // namespace graft::cuda
