// Variadic elementwise ops with multidirectional broadcasting: Max, Min, Sum and Mean.
#include <cmath>
#include <string>
#include <vector>

#include "exec/kernel.h"
#include "exec/plan.h"
#include "providers/cpu/broadcast.h"
#include "providers/cpu/math/elementwise.h"

namespace graft {
namespace {

using elementwise::compute_t;
using elementwise::Family;
using elementwise::register_versions;

// NaN wins in both Max and Min, as in NumPy's maximum and minimum.
struct MaxFn {
  template <typename T>
  T operator()(T a, T b) const {
    return (a != a || a > b) ? a : b;  // a != a: a is NaN
  }
};
struct MinFn {
  template <typename T>
  T operator()(T a, T b) const {
    return (a != a || a < b) ? a : b;
  }
};
struct SumFn {
  template <typename T>
  T operator()(T a, T b) const {
    return a + b;
  }
};

// Folds the inputs left to right into the output, which has their broadcast shape. Mean
// divides the sum by the number of inputs.
template <typename Fn, Family family, bool mean = false>
class VariadicKernel : public Kernel, public InPlaceKernel {
 public:
  explicit VariadicKernel(const KernelInfo& info) {}

  void compute(KernelContext& ctx) override { compute_in_place(ctx, {}); }

  // The fold may run in input 0's buffer (it starts there) when nothing reads input 0 later.
  std::vector<std::pair<int, int>> in_place_pairs() const override { return {{0, 0}}; }

  void compute_in_place(KernelContext& ctx, const std::vector<int>& reuse) override {
    const int n = ctx.num_inputs();
    if (n == 0) ctx.fail("needs at least one input");
    std::vector<Shape> shapes;
    const DType dtype = ctx.input(0).dtype();
    for (int i = 0; i < n; ++i) {
      const Tensor& t = ctx.input(i);
      if (t.dtype() != dtype) {
        ctx.fail("input " + std::to_string(i) + " has dtype " + dtype_name(t.dtype()) +
                 ", input 0 has " + dtype_name(dtype));
      }
      shapes.push_back(t.shape());
    }
    const Shape shape = broadcast_shapes(shapes, ctx.describe());
    Tensor reused;
    if (!reuse.empty() && reuse[0] == 0 && ctx.input(0).shape() == shape) {
      reused = ctx.input(0);
      ctx.set_output(0, Value(reused));
    }
    Tensor& y = reused.buffer() ? reused : ctx.output(0, dtype, shape);
    elementwise::dispatch_family<family>(dtype, ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using C = compute_t<T>;
      if (!reused.buffer())
        broadcast_map<T, T>(
            y, [](T v) { return v; }, ctx.input(0));
      for (int i = 1; i < n; ++i) {
        broadcast_map<T, T, T>(
            y, [](T a, T b) { return static_cast<T>(Fn{}(static_cast<C>(a), static_cast<C>(b))); },
            y, ctx.input(i));
      }
      if constexpr (mean) {
        const C count = static_cast<C>(n);
        elementwise::map_unary<T, T>(
            y, y, [count](T v) { return static_cast<T>(static_cast<C>(v) / count); });
      }
    });
  }
};

}  // namespace

GRAFT_CPU_KERNELS(math_variadic) {
  register_versions(reg, "Max", {1, 6, 8, 12, 13}, kNumberTypes,
                    make<VariadicKernel<MaxFn, Family::Number>>);
  register_versions(reg, "Min", {1, 6, 8, 12, 13}, kNumberTypes,
                    make<VariadicKernel<MinFn, Family::Number>>);
  register_versions(reg, "Sum", {1, 6, 8, 13}, kFloatTypes,
                    make<VariadicKernel<SumFn, Family::Float>>);
  register_versions(reg, "Mean", {1, 6, 8, 13}, kFloatTypes,
                    make<VariadicKernel<SumFn, Family::Float, true>>);
}

}  // namespace graft
