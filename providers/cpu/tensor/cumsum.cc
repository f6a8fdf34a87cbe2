// CumSum: running sums along an axis, optionally exclusive and/or reversed.
#include <type_traits>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

class CumSum final : public Kernel {
 public:
  explicit CumSum(const KernelInfo& info)
      : exclusive_(info.attr_int("exclusive", 0) != 0),
        reverse_(info.attr_int("reverse", 0) != 0) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& axis_t = ctx.input(1);
    if (axis_t.size() != 1) ctx.fail("axis must be a scalar");
    if (x.rank() == 0) ctx.fail("input must have rank >= 1");
    const int64_t axis = tensor_ops::normalize_axis(ctx, axis_t.scalar_as_int(), x.rank());
    const auto ax = static_cast<size_t>(axis);
    const int64_t outer = tensor_ops::product(x.shape(), 0, ax);
    const int64_t dim = x.dim(axis);
    const int64_t inner = tensor_ops::product(x.shape(), ax + 1, x.shape().size());
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    dispatch_number(x.dtype(), "CumSum", [&](auto tag) {
      using T = typename decltype(tag)::type;
      constexpr bool kHalf = std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;
      using A = std::conditional_t<kHalf, float, T>;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
#pragma omp parallel for if (x.size() > tensor_ops::kParallelElements && outer > 1)
      for (int64_t o = 0; o < outer; ++o) {
        std::vector<T> acc(static_cast<size_t>(inner), T(A(0)));
        for (int64_t s = 0; s < dim; ++s) {
          const int64_t j = reverse_ ? dim - 1 - s : s;
          const int64_t offset = (o * dim + j) * inner;
          for (int64_t i = 0; i < inner; ++i) {
            T& a = acc[static_cast<size_t>(i)];
            // Each step rounds to T, as NumPy's float16 sums do.
            const T sum = T(static_cast<A>(static_cast<A>(a) + static_cast<A>(src[offset + i])));
            dst[offset + i] = exclusive_ ? a : sum;
            a = sum;
          }
        }
      }
    });
  }

 private:
  bool exclusive_;
  bool reverse_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_cumsum) {
  const std::vector<DType> types = {DType::Float,  DType::Double, DType::Int32,   DType::Int64,
                                    DType::UInt32, DType::UInt64, DType::Float16, DType::BFloat16};
  reg.add({"", "CumSum", 11, 1 << 30, types, 0, make<CumSum>});
}

}  // namespace graft
