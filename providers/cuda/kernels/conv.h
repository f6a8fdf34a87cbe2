// Conv, ConvTranspose and com.graft ConvGrad over 1 to 3 spatial dims, with groups, strides,
// dilations and every auto_pad, on the backend's convolution calls (dnn.h). The window is
// resolved as the CPU provider resolves it (exec/window.h); pads the library cannot take (begin
// and end differ) become an explicitly padded copy of the input, and the bias is added, or its
// gradient summed, by the backend's own loops.
#pragma once

#include "ir/names.h"
#include "providers/cuda/kernels/dnn.h"

namespace graft::cuda {

// y = conv(x, w) for any pads: `d`'s own when it is symmetric, else over a padded copy of x.
template <class B>
void conv_forward_any_pads(B& backend, const ConvDesc& d, const void* x, const void* w, void* y,
                           const char* who) {
  if (d.symmetric()) {
    backend.conv_forward(d, x, w, y);
    return;
  }
  const SymmetricConv s = symmetric_conv(d);
  Tensor padded = Tensor::empty(d.dtype, s.padded.x_shape(), backend.allocator());
  int64_t offset[kDnnDims];
  for (int i = 0; i < kDnnDims; ++i) offset[i] = -s.extra_begin[i];
  copy_window(backend, d.dtype, d.batch * d.channels, x, d.in, padded.raw(), s.padded.in, offset,
              who);
  backend.conv_forward(s.padded, padded.raw(), w, y);
}

// y += b per output channel.
template <class B>
void add_bias(B& backend, const Tensor& b, Tensor& y, const char* who) {
  const int64_t maps = y.dim(1);
  const int64_t spatial = maps == 0 ? 0 : y.size() / (y.dim(0) * maps);
  dispatch_device_float(y.dtype(), who, [&](auto tag) {
    using T = typename decltype(tag)::type;
    backend.for_each(y.size(), BiasAddFn<T>{b.data<T>(), y.data<T>(), maps, spatial});
  });
}

// Fails unless `b` is absent or a 1-D tensor of `maps` elements of `dtype`.
inline void check_bias(const Tensor* b, int64_t maps, DType dtype, const KernelContext& ctx) {
  if (b != nullptr && (b->rank() != 1 || b->dim(0) != maps || b->dtype() != dtype))
    ctx.fail("B must be a 1-D tensor of " + std::to_string(maps) + " elements of X's dtype");
}

template <class B>
class ConvKernel final : public DeviceKernel<B> {
 public:
  explicit ConvKernel(const KernelInfo& info)
      : DeviceKernel<B>(info), attrs_(info), group_(info.attr_int("group", 1)) {
    if (group_ <= 0) info.fail("group must be positive");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    const Shape in = spatial_dims(x, ctx);
    if (w.rank() != x.rank() || w.dtype() != x.dtype())
      ctx.fail("W " + shape_to_string(w.shape()) + " must have the rank and dtype of X " +
               shape_to_string(x.shape()));
    const int64_t channels = x.dim(1), maps = w.dim(0);
    if (channels % group_ != 0 || maps % group_ != 0 || w.dim(1) * group_ != channels)
      ctx.fail("X has " + std::to_string(channels) + " channels and W " +
               shape_to_string(w.shape()) + ", which does not fit group " + std::to_string(group_));
    const Shape kernel(w.shape().begin() + 2, w.shape().end());
    if (!attrs_.kernel_shape.empty() && attrs_.kernel_shape != kernel)
      ctx.fail("kernel_shape does not match W's spatial dims");
    const ConvDesc d = conv_desc(attrs_.resolve(in, kernel, ctx), x.dtype(), x.dim(0), channels,
                                 maps, group_, this->backend().use_tf32(), ctx.describe());
    const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    check_bias(b, maps, x.dtype(), ctx);
    Tensor& y = ctx.output(0, x.dtype(), d.y_shape());
    if (y.size() == 0) return;
    if (x.size() == 0) {
      this->backend().fill(y.raw(), 0, y.nbytes());
    } else {
      conv_forward_any_pads(this->backend(), d, x.raw(), w.raw(), y.raw(), ctx.describe().c_str());
    }
    if (b != nullptr) add_bias(this->backend(), *b, y, ctx.describe().c_str());
  }

 private:
  WindowAttrs attrs_;
  int64_t group_;
};

// ConvTranspose is the adjoint in x of the convolution from its output to its input, which is
// that convolution's backward-data call. Where the library cannot take the pads (begin and end
// differ, a negative pad under SAME with output_shape, or output_shape past the padded output),
// it computes the unpadded output and the kernel crops it, zero where output_shape reaches past.
template <class B>
class ConvTransposeKernel final : public DeviceKernel<B> {
 public:
  explicit ConvTransposeKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        attrs_(info),
        group_(info.attr_int("group", 1)),
        output_padding_(info.attr_ints("output_padding")),
        output_shape_(info.attr_ints("output_shape")) {
    if (group_ <= 0) info.fail("group must be positive");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    const Shape in = spatial_dims(x, ctx);
    if (w.rank() != x.rank() || w.dtype() != x.dtype())
      ctx.fail("W " + shape_to_string(w.shape()) + " must have the rank and dtype of X " +
               shape_to_string(x.shape()));
    const int64_t channels = x.dim(1), maps = w.dim(1) * group_;
    if (w.dim(0) != channels || channels % group_ != 0)
      ctx.fail("X has " + std::to_string(channels) + " channels and W " +
               shape_to_string(w.shape()) + ", which does not fit group " + std::to_string(group_));
    const Shape kernel(w.shape().begin() + 2, w.shape().end());
    if (!attrs_.kernel_shape.empty() && attrs_.kernel_shape != kernel)
      ctx.fail("kernel_shape does not match W's spatial dims");
    // The forward convolution maps the output (maps channels) to x (channels maps).
    const ConvDesc d = conv_desc(
        attrs_.resolve_transposed(in, kernel, output_padding_, output_shape_, ctx), x.dtype(),
        x.dim(0), maps, channels, group_, this->backend().use_tf32(), ctx.describe());
    const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    check_bias(b, maps, x.dtype(), ctx);
    Tensor& y = ctx.output(0, x.dtype(), d.x_shape());
    if (y.size() == 0) return;
    B& backend = this->backend();
    bool direct = d.symmetric();
    for (int i = 0; i < kDnnDims; ++i)
      direct = direct && conv_output_dim(d.in[i], d.kernel[i], d.strides[i], d.dilations[i],
                                         d.pad_begin[i], d.pad_end[i]) == d.out[i];
    if (x.size() == 0) {
      backend.fill(y.raw(), 0, y.nbytes());
    } else if (direct) {
      backend.conv_backward_data(d, w.raw(), x.raw(), y.raw());
    } else {
      ConvDesc full = d;
      int64_t offset[kDnnDims];
      for (int i = 0; i < kDnnDims; ++i) {
        full.in[i] = (d.out[i] - 1) * d.strides[i] + (d.kernel[i] - 1) * d.dilations[i] + 1;
        full.pad_begin[i] = full.pad_end[i] = 0;
        offset[i] = d.pad_begin[i];
      }
      Tensor z = Tensor::empty(x.dtype(), full.x_shape(), backend.allocator());
      backend.conv_backward_data(full, w.raw(), x.raw(), z.raw());
      copy_window(backend, x.dtype(), d.batch * maps, z.raw(), full.in, y.raw(), d.in, offset,
                  ctx.describe().c_str());
    }
    if (b != nullptr) add_bias(backend, *b, y, ctx.describe().c_str());
  }

 private:
  WindowAttrs attrs_;
  int64_t group_;
  Shape output_padding_;
  Shape output_shape_;
};

// com.graft ConvGrad (dY, X, W) => (dX, dW, dB) of y = conv(x, w) + b without groups, each
// output computed only when the node names it. Asymmetric pads: dW correlates the explicitly
// padded X with dY, and dX is the padded input's gradient cropped.
template <class B>
class ConvGradKernel final : public DeviceKernel<B> {
 public:
  explicit ConvGradKernel(const KernelInfo& info) : DeviceKernel<B>(info), attrs_(info) {}

  void compute(KernelContext& ctx) override {
    const Tensor& dy = ctx.input(0);
    const Tensor& x = ctx.input(1);
    const Tensor& w = ctx.input(2);
    const Shape in = spatial_dims(x, ctx);
    if (w.rank() != x.rank() || dy.rank() != x.rank() || w.dtype() != x.dtype() ||
        dy.dtype() != x.dtype())
      ctx.fail("dY " + shape_to_string(dy.shape()) + ", X " + shape_to_string(x.shape()) +
               " and W " + shape_to_string(w.shape()) + " must share rank and dtype");
    const Shape kernel(w.shape().begin() + 2, w.shape().end());
    const ConvDesc d = conv_desc(attrs_.resolve(in, kernel, ctx), x.dtype(), x.dim(0), x.dim(1),
                                 w.dim(0), 1, this->backend().use_tf32(), ctx.describe());
    if (w.dim(1) != d.channels || dy.shape() != d.y_shape())
      ctx.fail("dY " + shape_to_string(dy.shape()) + " is not the output of X " +
               shape_to_string(x.shape()) + " convolved with W " + shape_to_string(w.shape()));
    B& backend = this->backend();
    const char* who = ctx.describe().c_str();
    const bool empty = dy.size() == 0 || x.size() == 0;
    if (ctx.has_output(0)) {
      Tensor& dx = ctx.output(0, x.dtype(), x.shape());
      if (empty) {
        backend.fill(dx.raw(), 0, dx.nbytes());
      } else if (d.symmetric()) {
        backend.conv_backward_data(d, w.raw(), dy.raw(), dx.raw());
      } else {
        const SymmetricConv s = symmetric_conv(d);
        Tensor padded = Tensor::empty(x.dtype(), s.padded.x_shape(), backend.allocator());
        backend.conv_backward_data(s.padded, w.raw(), dy.raw(), padded.raw());
        copy_window(backend, x.dtype(), d.batch * d.channels, padded.raw(), s.padded.in, dx.raw(),
                    d.in, s.extra_begin, who);
      }
    }
    if (ctx.has_output(1)) {
      Tensor& dw = ctx.output(1, w.dtype(), w.shape());
      if (empty) {
        backend.fill(dw.raw(), 0, dw.nbytes());
      } else if (d.symmetric()) {
        backend.conv_backward_filter(d, x.raw(), dy.raw(), dw.raw());
      } else {
        const SymmetricConv s = symmetric_conv(d);
        Tensor padded = Tensor::empty(x.dtype(), s.padded.x_shape(), backend.allocator());
        int64_t offset[kDnnDims];
        for (int i = 0; i < kDnnDims; ++i) offset[i] = -s.extra_begin[i];
        copy_window(backend, x.dtype(), d.batch * d.channels, x.raw(), d.in, padded.raw(),
                    s.padded.in, offset, who);
        backend.conv_backward_filter(s.padded, padded.raw(), dy.raw(), dw.raw());
      }
    }
    if (ctx.has_output(2)) {
      Tensor& db = ctx.output(2, x.dtype(), {d.maps});
      const int64_t spatial = shape_size(Shape(d.out, d.out + d.spatial));
      dispatch_device_float(x.dtype(), who, [&](auto tag) {
        using T = typename decltype(tag)::type;
        backend.reduce_rows(d.maps, d.batch * spatial,
                            BiasGradOp<T>{dy.data<T>(), db.data<T>(), d.maps, spatial});
      });
    }
  }

 private:
  WindowAttrs attrs_;
};

template <class B>
void register_conv(KernelRegistry& reg) {
  constexpr int kAny = 1 << 30;
  reg.add({"", "Conv", 1, kAny, kDeviceFloatTypes, 0, make<ConvKernel<B>>});
  reg.add({"", "ConvTranspose", 1, kAny, kDeviceFloatTypes, 0, make<ConvTransposeKernel<B>>});
  reg.add({names::kDomain, "ConvGrad", 1, kAny, {DType::Float}, 0, make<ConvGradKernel<B>>});
}

}  // namespace graft::cuda
