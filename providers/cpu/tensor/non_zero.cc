// NonZero: the indices of the non-zero elements, one row per axis.
#include <type_traits>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

template <typename T>
bool is_nonzero(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return !v.empty();
  } else if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
    return static_cast<float>(v) != 0.0f;
  } else {
    return v != T(0);
  }
}

class NonZero final : public Kernel {
 public:
  explicit NonZero(const KernelInfo&) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> hits;
    auto scan = [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* v = x.data<T>();
      for (int64_t i = 0; i < x.size(); ++i) {
        if (is_nonzero(v[i])) hits.push_back(i);
      }
    };
    if (x.dtype() == DType::String) {
      scan(TypeTag<std::string>{});
    } else {
      dispatch_numeric(x.dtype(), "NonZero", scan);
    }
    const auto n = static_cast<int64_t>(hits.size());
    // A scalar has no axes: the result is [0, count], as in the reference.
    Tensor& y = ctx.output(0, DType::Int64, {x.rank(), n});
    int64_t* out = y.data<int64_t>();
    for (int64_t j = 0; j < n; ++j) {
      int64_t rem = hits[static_cast<size_t>(j)];
      for (int64_t d = x.rank(); d-- > 0;) {
        out[d * n + j] = rem % x.dim(d);
        rem /= x.dim(d);
      }
    }
  }
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_non_zero) { reg.add({"", "NonZero", 9, 1 << 30, {}, 0, make<NonZero>}); }

}  // namespace graft
