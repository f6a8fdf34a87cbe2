// com.graft's elementwise gradient ops on the device: ReluGrad (dX = dY where Y > 0, else 0, with
// Y Relu's output), the contract of providers/cpu/training/relu_grad.cc. dX may overwrite dY,
// which the backward graph reads nowhere else.
#pragma once

#include "exec/plan.h"
#include "ir/names.h"
#include "providers/cuda/kernels/backend.h"

namespace graft::cuda {

template <typename T>
struct ReluGradFn {
  const T* dy;
  const T* y;
  T* dx;
  GRAFT_HD void operator()(int64_t i) const {
    // NaN in Y is not positive, so it passes no gradient, as on the CPU.
    dx[i] = widen(y[i]) > Acc<T>(0) ? dy[i] : narrow<T>(0);
  }
};

template <class B>
class ReluGradKernel final : public DeviceKernel<B>, public InPlaceKernel {
 public:
  explicit ReluGradKernel(const KernelInfo& info) : DeviceKernel<B>(info) {}

  std::vector<std::pair<int, int>> in_place_pairs() const override { return {{0, 0}}; }
  void compute(KernelContext& ctx) override { compute_in_place(ctx, {}); }

  void compute_in_place(KernelContext& ctx, const std::vector<int>& reuse) override {
    const Tensor& dy = ctx.input(0);
    const Tensor& y = ctx.input(1);
    if (dy.shape() != y.shape() || dy.dtype() != y.dtype()) {
      ctx.fail("dY " + shape_to_string(dy.shape()) + " " + dtype_name(dy.dtype()) + " and Y " +
               shape_to_string(y.shape()) + " " + dtype_name(y.dtype()) +
               " must share shape and type");
    }
    Tensor dx = dy;
    if (!reuse.empty() && reuse[0] == 0) {
      ctx.set_output(0, ctx.input_value(0));
    } else {
      dx = ctx.output(0, y.dtype(), y.shape());
    }
    dispatch_device_float(y.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      this->backend().for_each(y.size(), ReluGradFn<T>{dy.data<T>(), y.data<T>(), dx.data<T>()});
    });
  }
};

template <class B>
void register_training(KernelRegistry& reg) {
  reg.add({names::kDomain, "ReluGrad", 1, 1 << 30, kDeviceFloatTypes, 0, make<ReluGradKernel<B>>});
}

}  // namespace graft::cuda
