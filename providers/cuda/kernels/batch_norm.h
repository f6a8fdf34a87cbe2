// BatchNormalization (opset 9 and later, inference and training) and com.graft BatchNormGrad on
// the backend's batch normalization calls (dnn.h). The library takes the parameters as float
// (double for double X): parameters of another type are converted on the way in, gradients on
// the way out. In training mode the running statistics are blended here from the batch
// statistics the library returns, with ONNX's momentum and biased variance (cuDNN's own running
// variance is the unbiased one).
#pragma once

#include "ir/names.h"
#include "providers/cuda/kernels/dnn.h"

namespace graft::cuda {

// Per channel c, from the batch statistics (mean, 1 / sqrt(variance + epsilon)): the blended
// running statistics running * momentum + batch * (1 - momentum) and the batch statistics
// themselves, each written where its pointer is not null.
template <typename P, typename R>
struct BatchStatsFn {
  const R* running_mean;
  const R* running_var;
  const P* saved_mean;
  const P* saved_inv_std;
  R* new_mean;
  R* new_var;
  R* batch_mean;
  R* batch_var;
  Acc<P> momentum, epsilon;
  GRAFT_HD void operator()(int64_t c) const {
    using A = Acc<P>;
    const A mean = widen(saved_mean[c]);
    const A inv_std = widen(saved_inv_std[c]);
    const A var = A(1) / (inv_std * inv_std) - epsilon;
    if (new_mean)
      new_mean[c] = narrow<R>(widen(running_mean[c]) * momentum + mean * (1 - momentum));
    if (new_var) new_var[c] = narrow<R>(widen(running_var[c]) * momentum + var * (1 - momentum));
    if (batch_mean) batch_mean[c] = narrow<R>(mean);
    if (batch_var) batch_var[c] = narrow<R>(var);
  }
};

// X viewed as [N, C, spatial] (rank 2 or more).
inline BatchNormDesc batch_norm_desc(const Tensor& x, float epsilon, const KernelContext& ctx) {
  if (x.rank() < 2) ctx.fail("X must have rank 2 or more, got " + shape_to_string(x.shape()));
  BatchNormDesc d;
  d.who = ctx.describe().c_str();
  d.dtype = x.dtype();
  d.param_dtype = batch_norm_param_dtype(x.dtype());
  d.batch = x.dim(0);
  d.channels = x.dim(1);
  d.spatial = d.batch * d.channels == 0 ? 0 : x.size() / (d.batch * d.channels);
  d.epsilon = epsilon;
  return d;
}

template <class B>
class BatchNormKernel final : public DeviceKernel<B> {
 public:
  explicit BatchNormKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        epsilon_(info.attr_float("epsilon", 1e-5f)),
        momentum_(info.attr_float("momentum", 0.9f)),
        since_(info.since_version()),
        training_(since_ >= 14 ? info.attr_int("training_mode", 0) != 0 : info.num_outputs() > 1) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const BatchNormDesc d = batch_norm_desc(x, epsilon_, ctx);
    for (int i = 1; i <= 4; ++i) {
      if (ctx.input(i).size() != d.channels)
        ctx.fail("input " + std::to_string(i) + " has " + std::to_string(ctx.input(i).size()) +
                 " elements, expected " + std::to_string(d.channels));
    }
    if (ctx.input(3).dtype() != ctx.input(4).dtype()) ctx.fail("mean and var must share a type");
    B& backend = this->backend();
    const char* who = ctx.describe().c_str();
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    const Tensor scale = device_as(backend, ctx.input(1), d.param_dtype, who);
    const Tensor bias = device_as(backend, ctx.input(2), d.param_dtype, who);
    if (!training_) {
      if (x.size() == 0) return;
      const Tensor mean = device_as(backend, ctx.input(3), d.param_dtype, who);
      const Tensor var = device_as(backend, ctx.input(4), d.param_dtype, who);
      backend.batch_norm_inference(d, x.raw(), scale.raw(), bias.raw(), mean.raw(), var.raw(),
                                   y.raw());
      return;
    }
    if (d.batch * d.spatial == 0)
      ctx.fail("training mode needs elements in every channel, X is " + shape_to_string(x.shape()));
    Tensor saved_mean = Tensor::empty(d.param_dtype, {d.channels}, backend.allocator());
    Tensor saved_inv_std = Tensor::empty(d.param_dtype, {d.channels}, backend.allocator());
    backend.batch_norm_training(d, x.raw(), scale.raw(), bias.raw(), y.raw(), saved_mean.raw(),
                                saved_inv_std.raw());
    // Opset 14+: (running_mean, running_var). Earlier: (mean, var, saved_mean, saved_var), the
    // updated running statistics and the batch's.
    const DType stats = ctx.input(3).dtype();
    auto wanted = [&](int i) -> void* {
      if (i >= ctx.num_outputs() || !ctx.has_output(i) || (since_ >= 14 && i > 2)) return nullptr;
      return ctx.output(i, stats, {d.channels}).raw();
    };
    void* outs[4] = {wanted(1), wanted(2), wanted(3), wanted(4)};
    dispatch_device_float(d.param_dtype, who, [&](auto param) {
      using P = typename decltype(param)::type;
      dispatch_device_float(stats, who, [&](auto stat) {
        using R = typename decltype(stat)::type;
        backend.for_each(
            d.channels,
            BatchStatsFn<P, R>{ctx.input(3).data<R>(), ctx.input(4).data<R>(), saved_mean.data<P>(),
                               saved_inv_std.data<P>(), static_cast<R*>(outs[0]),
                               static_cast<R*>(outs[1]), static_cast<R*>(outs[2]),
                               static_cast<R*>(outs[3]), static_cast<Acc<P>>(momentum_),
                               static_cast<Acc<P>>(epsilon_)});
      });
    });
  }

 private:
  float epsilon_;
  float momentum_;
  int since_;
  bool training_;
};

// com.graft BatchNormGrad (dY, X, Scale) => (dX, dScale, dB) of training-mode
// BatchNormalization, the batch statistics recomputed from X; axes must be every axis but 1.
template <class B>
class BatchNormGradKernel final : public DeviceKernel<B> {
 public:
  explicit BatchNormGradKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        axes_(info.attr_ints("axes")),
        epsilon_(info.attr_float("epsilon", 1e-5f)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& dy = ctx.input(0);
    const Tensor& x = ctx.input(1);
    const Tensor& scale = ctx.input(2);
    if (dy.shape() != x.shape() || dy.dtype() != x.dtype() || scale.dtype() != x.dtype())
      ctx.fail("dY and X must share shape and type, and Scale X's type");
    const BatchNormDesc d = batch_norm_desc(x, epsilon_, ctx);
    const int64_t rank = x.rank();
    bool per_channel = static_cast<int64_t>(axes_.size()) == rank - 1;
    for (size_t k = 0; per_channel && k < axes_.size(); ++k) {
      const int64_t a = axes_[k] < 0 ? axes_[k] + rank : axes_[k];
      per_channel = a == (k == 0 ? 0 : static_cast<int64_t>(k) + 1);
    }
    if (!per_channel) ctx.fail("axes must be every axis but axis 1");
    if (scale.size() != d.channels)
      ctx.fail("Scale " + shape_to_string(scale.shape()) + " must have " +
               std::to_string(d.channels) + " elements");
    if (d.batch * d.spatial == 0)
      ctx.fail("X " + shape_to_string(x.shape()) + " has no elements per channel");
    B& backend = this->backend();
    const char* who = ctx.describe().c_str();
    // Omitted outputs come back as scratch: the library writes all three.
    Tensor& dx = ctx.output(0, x.dtype(), x.shape());
    Tensor& dscale = ctx.output(1, x.dtype(), scale.shape());
    Tensor& dbias = ctx.output(2, x.dtype(), scale.shape());
    const Tensor scale_p = device_as(backend, scale, d.param_dtype, who);
    const bool same = d.param_dtype == x.dtype();
    Tensor dscale_p =
        same ? dscale : Tensor::empty(d.param_dtype, scale.shape(), backend.allocator());
    Tensor dbias_p =
        same ? dbias : Tensor::empty(d.param_dtype, scale.shape(), backend.allocator());
    backend.batch_norm_backward(d, x.raw(), dy.raw(), scale_p.raw(), dx.raw(), dscale_p.raw(),
                                dbias_p.raw());
    if (!same) {
      convert_into(backend, dscale_p, dscale, who);
      convert_into(backend, dbias_p, dbias, who);
    }
  }

 private:
  std::vector<int64_t> axes_;
  float epsilon_;
};

template <class B>
void register_batch_norm(KernelRegistry& reg) {
  constexpr int kAny = 1 << 30;
  reg.add({"", "BatchNormalization", 9, kAny, kDeviceFloatTypes, 0, make<BatchNormKernel<B>>});
  reg.add({names::kDomain, "BatchNormGrad", 1, kAny, kDeviceFloatTypes, 0,
           make<BatchNormGradKernel<B>>});
}

}  // namespace graft::cuda
