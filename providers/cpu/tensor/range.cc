// Range: start, start + delta, ... up to limit (exclusive).
#include <type_traits>

#include "exec/kernel.h"
#include "exec/movement_shapes.h"

namespace graft {
namespace {

// Integers count exactly; floats compute in their own precision as NumPy's arange does, the
// half types in float (Range-27's stash_type).
template <typename T>
void fill_range(KernelContext& ctx, const Tensor& start_t, const Tensor& limit_t,
                const Tensor& delta_t) {
  using C = std::conditional_t<std::is_integral_v<T> || std::is_same_v<T, double>, T, float>;
  const C start = static_cast<C>(start_t.data<T>()[0]);
  const C limit = static_cast<C>(limit_t.data<T>()[0]);
  const C delta = static_cast<C>(delta_t.data<T>()[0]);
  const int64_t count = range_count(ctx, start, limit, delta);
  T* y = ctx.output(0, start_t.dtype(), {count}).data<T>();
  for (int64_t i = 0; i < count; ++i) {
    y[i] = static_cast<T>(static_cast<C>(start + static_cast<C>(i) * delta));
  }
}

class Range final : public Kernel {
 public:
  explicit Range(const KernelInfo&) {}

  void compute(KernelContext& ctx) override {
    const Tensor& start = ctx.input(0);
    const Tensor& limit = ctx.input(1);
    const Tensor& delta = ctx.input(2);
    if (start.dtype() != limit.dtype() || start.dtype() != delta.dtype()) {
      ctx.fail("start, limit and delta differ in dtype");
    }
    if (start.size() != 1 || limit.size() != 1 || delta.size() != 1) {
      ctx.fail("start, limit and delta must be scalars");
    }
    dispatch_number(start.dtype(), "Range", [&](auto tag) {
      fill_range<typename decltype(tag)::type>(ctx, start, limit, delta);
    });
  }
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_range) {
  const std::vector<DType> types = {DType::Float, DType::Double,  DType::Int16,   DType::Int32,
                                    DType::Int64, DType::Float16, DType::BFloat16};
  reg.add({"", "Range", 11, 1 << 30, types, 0, make<Range>});
}

}  // namespace graft
