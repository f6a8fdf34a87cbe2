// com.graft.ReluGrad: dX = dY where Y > 0, else 0 (Y is Relu's output).
#include <type_traits>

#include "exec/kernel.h"

namespace graft {
namespace {

template <typename T>
bool positive(T v) {
  if constexpr (std::is_arithmetic_v<T>) {
    return v > T(0);
  } else {
    return static_cast<float>(v) > 0.0f;
  }
}

class ReluGrad : public Kernel {
 public:
  explicit ReluGrad(const KernelInfo& info) {}

  void compute(KernelContext& ctx) override {
    const Tensor& dy = ctx.input(0);
    const Tensor& y = ctx.input(1);
    if (dy.shape() != y.shape() || dy.dtype() != y.dtype())
      ctx.fail("dY " + shape_to_string(dy.shape()) + " and Y " + shape_to_string(y.shape()) +
               " must share shape and type");
    Tensor& dx = ctx.output(0, y.dtype(), y.shape());
    dispatch_float(y.dtype(), "ReluGrad", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* g = dy.data<T>();
      const T* out = y.data<T>();
      T* d = dx.data<T>();
      const int64_t n = y.size();
#pragma omp parallel for simd if (n > (1 << 16))
      for (int64_t i = 0; i < n; ++i) d[i] = positive(out[i]) ? g[i] : T(0.0f);
    });
  }
};

}  // namespace

GRAFT_CPU_KERNELS(relu_grad) {
  reg.add({"com.graft", "ReluGrad", 1, 1 << 30, kFloatTypes, 0, make<ReluGrad>});
}

}  // namespace graft
