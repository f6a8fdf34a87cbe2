// CumProd: running products along an axis, optionally exclusive and/or reversed.
#include <type_traits>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

// a * b in T; integers wrap like NumPy instead of overflowing.
template <typename T>
T multiply(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
  } else if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
    return T(static_cast<float>(a) * static_cast<float>(b));
  } else {
    return a * b;
  }
}

class CumProd final : public Kernel {
 public:
  explicit CumProd(const KernelInfo& info)
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
    dispatch_number(x.dtype(), "CumProd", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
      const T one = T(1);
#pragma omp parallel for if (x.size() > tensor_ops::kParallelElements && outer > 1)
      for (int64_t o = 0; o < outer; ++o) {
        std::vector<T> acc(static_cast<size_t>(inner), one);
        for (int64_t s = 0; s < dim; ++s) {
          const int64_t j = reverse_ ? dim - 1 - s : s;
          const int64_t offset = (o * dim + j) * inner;
          for (int64_t i = 0; i < inner; ++i) {
            T& a = acc[static_cast<size_t>(i)];
            const T product = multiply(a, src[offset + i]);
            dst[offset + i] = exclusive_ ? a : product;
            a = product;
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

GRAFT_CPU_KERNELS(misc_cum_prod) {
  const std::vector<DType> types = {DType::Float,  DType::Double, DType::Int32,   DType::Int64,
                                    DType::UInt32, DType::UInt64, DType::Float16, DType::BFloat16};
  reg.add({"", "CumProd", 26, 1 << 30, types, 0, make<CumProd>});
}

}  // namespace graft
