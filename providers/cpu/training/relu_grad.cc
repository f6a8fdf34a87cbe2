// com.graft.ReluGrad: dX = dY where Y > 0, else 0 (Y is Relu's output).
#include <type_traits>

#include "exec/kernel.h"
#include "exec/plan.h"
#include "ir/names.h"
#include "providers/cpu/math/elementwise.h"

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

// dX may overwrite dY, which the backward graph reads nowhere else.
class ReluGrad : public Kernel, public InPlaceKernel {
 public:
  explicit ReluGrad(const KernelInfo& info) {}

  std::vector<std::pair<int, int>> in_place_pairs() const override { return {{0, 0}}; }
  void compute(KernelContext& ctx) override { compute_in_place(ctx, {}); }

  void compute_in_place(KernelContext& ctx, const std::vector<int>& reuse) override {
    const Tensor& dy = ctx.input(0);
    const Tensor& y = ctx.input(1);
    if (dy.shape() != y.shape() || dy.dtype() != y.dtype())
      ctx.fail("dY " + shape_to_string(dy.shape()) + " and Y " + shape_to_string(y.shape()) +
               " must share shape and type");
    // The result's buffer: dY's own when it may be overwritten (a shallow copy shares it).
    Tensor dx = dy;
    if (!reuse.empty() && reuse[0] == 0) {
      ctx.set_output(0, ctx.input_value(0));
    } else {
      dx = ctx.output(0, y.dtype(), y.shape());
    }
    dispatch_float(y.dtype(), "ReluGrad", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* g = dy.data<T>();
      const T* out = y.data<T>();
      T* d = dx.data<T>();
      elementwise::parallel_ranges(y.size(), [&](int64_t begin, int64_t end) {
        // Both operands loaded before the select, so it compiles to a blend, not a branch.
        for (int64_t i = begin; i < end; ++i) {
          const T gi = g[i];
          const T zero(0.0f);
          d[i] = positive(out[i]) ? gi : zero;
        }
      });
    });
  }
};

}  // namespace

GRAFT_CPU_KERNELS(relu_grad) {
  reg.add({names::kDomain, "ReluGrad", 1, 1 << 30, kFloatTypes, 0, make<ReluGrad>});
}

}  // namespace graft
