// ArgMax and ArgMin: int64 index of the extreme value along one axis; the first one unless
// select_last_index (opset 12) asks for the last. NaN counts as the extreme, like NumPy.
#include <cmath>
#include <type_traits>

#include "exec/kernel.h"
#include "exec/reduce_shapes.h"
#include "providers/cpu/reduction/reduce_engine.h"

namespace graft {
namespace {

template <typename T>
bool is_nan(T v) {
  if constexpr (std::is_integral_v<T>)
    return false;
  else
    return std::isnan(static_cast<double>(v));
}

class ArgMinMax : public Kernel {
 public:
  ArgMinMax(const KernelInfo& info, bool is_max)
      : is_max_(is_max),
        axis_(info.attr_int("axis", 0)),
        keepdims_(info.attr_int("keepdims", 1) != 0),
        select_last_(info.attr_int("select_last_index", 0) != 0) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> axes = {axis_};
    if (x.rank() == 0 || !normalize_reduce_axes(axes, x.rank()))
      ctx.fail("axis " + std::to_string(axis_) + " is out of range for shape " +
               shape_to_string(x.shape()));
    const int64_t length = x.dim(axes[0]);
    const cpu::ReducePlan plan = cpu::make_reduce_plan(x.shape(), axes, keepdims_);
    if (length == 0 && shape_size(plan.out_shape) > 0)
      ctx.fail("cannot take the arg extreme over an empty axis");
    Tensor& y = ctx.output(0, DType::Int64, plan.out_shape);
    int64_t* out = y.data<int64_t>();
    // The reduced positions are visited in order, so the step count is the candidate's index.
    dispatch_number(x.dtype(), is_max_ ? "ArgMax" : "ArgMin", [&](auto tag) {
      using T = typename decltype(tag)::type;
      struct Best {
        T value;
        int64_t index;  // of the best so far
        int64_t seen;   // positions visited
      };
      const bool is_max = is_max_, last = select_last_;
      cpu::run_reduce<Best>(
          plan, x.data<T>(), Best{T(), -1, 0},
          [is_max, last](Best b, T v, int64_t) {
            const int64_t i = b.seen++;
            if (b.index < 0 || (!is_nan(b.value) && is_nan(v))) return Best{v, i, b.seen};
            if (is_nan(b.value) || is_nan(v)) return b;
            const bool better = is_max ? v > b.value : v < b.value;
            if (better || (last && v == b.value)) return Best{v, i, b.seen};
            return b;
          },
          [out](int64_t o, const Best& b) { out[o] = b.index; });
    });
  }

 private:
  bool is_max_;
  int64_t axis_;
  bool keepdims_;
  bool select_last_;
};

}  // namespace

GRAFT_CPU_KERNELS(arg_min_max) {
  reg.add({"", "ArgMax", 1, 1 << 30, kNumberTypes, 0,
           [](const KernelInfo& info) { return std::make_unique<ArgMinMax>(info, true); }});
  reg.add({"", "ArgMin", 1, 1 << 30, kNumberTypes, 0,
           [](const KernelInfo& info) { return std::make_unique<ArgMinMax>(info, false); }});
}

}  // namespace graft
