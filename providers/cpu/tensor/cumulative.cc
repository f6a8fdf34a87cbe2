// CumSum and CumProd: running sums or products along an axis, optionally exclusive and/or
// reversed. Half types round to T at each step, as NumPy does; integers wrap like NumPy.
#include <type_traits>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

enum class Accumulate { Sum, Product };

template <Accumulate kOp, typename T>
T combine(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    const auto ua = static_cast<U>(a), ub = static_cast<U>(b);
    return static_cast<T>(static_cast<U>(kOp == Accumulate::Sum ? ua + ub : ua * ub));
  } else if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
    const float fa = static_cast<float>(a), fb = static_cast<float>(b);
    return T(kOp == Accumulate::Sum ? fa + fb : fa * fb);
  } else {
    return kOp == Accumulate::Sum ? a + b : a * b;
  }
}

template <Accumulate kOp>
class Cumulative final : public Kernel {
 public:
  explicit Cumulative(const KernelInfo& info)
      : exclusive_(info.attr_int("exclusive", 0) != 0),
        reverse_(info.attr_int("reverse", 0) != 0) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& axis_t = ctx.input(1);
    if (axis_t.size() != 1) ctx.fail("axis must be a scalar");
    if (x.rank() == 0) ctx.fail("input must have rank >= 1");
    const auto axis =
        static_cast<size_t>(tensor_ops::normalize_axis(ctx, axis_t.scalar_as_int(), x.rank()));
    const int64_t outer = tensor_ops::product(x.shape(), 0, axis);
    const int64_t dim = x.shape()[axis];
    const int64_t inner = tensor_ops::product(x.shape(), axis + 1, x.shape().size());
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    dispatch_number(x.dtype(), kOp == Accumulate::Sum ? "CumSum" : "CumProd", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
      const T identity = T(kOp == Accumulate::Sum ? 0.0f : 1.0f);
#pragma omp parallel for if (x.size() > tensor_ops::kParallelElements && outer > 1)
      for (int64_t o = 0; o < outer; ++o) {
        std::vector<T> acc(static_cast<size_t>(inner), identity);
        for (int64_t s = 0; s < dim; ++s) {
          const int64_t j = reverse_ ? dim - 1 - s : s;
          const int64_t offset = (o * dim + j) * inner;
          for (int64_t i = 0; i < inner; ++i) {
            T& a = acc[static_cast<size_t>(i)];
            const T next = combine<kOp>(a, src[offset + i]);
            dst[offset + i] = exclusive_ ? a : next;
            a = next;
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

GRAFT_CPU_KERNELS(tensor_cumulative) {
  const std::vector<DType> types = {DType::Float,  DType::Double, DType::Int32,   DType::Int64,
                                    DType::UInt32, DType::UInt64, DType::Float16, DType::BFloat16};
  reg.add({"", "CumSum", 11, 1 << 30, types, 0, make<Cumulative<Accumulate::Sum>>});
  reg.add({"", "CumProd", 26, 1 << 30, types, 0, make<Cumulative<Accumulate::Product>>});
}

}  // namespace graft
