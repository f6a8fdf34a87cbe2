// LpNormalization: x / ||x||_p along one axis (p is 1 or 2); a zero norm gives zeros.
#include <cmath>
#include <type_traits>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

class LpNormalization final : public Kernel {
 public:
  explicit LpNormalization(const KernelInfo& info)
      : axis_(info.attr_int("axis", -1)), p_(info.attr_int("p", 2)) {
    if (p_ != 1 && p_ != 2) info.fail("p must be 1 or 2, got " + std::to_string(p_));
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() == 0) ctx.fail("input must have rank >= 1");
    const auto axis = static_cast<size_t>(tensor_ops::normalize_axis(ctx, axis_, x.rank()));
    const int64_t outer = tensor_ops::product(x.shape(), 0, axis);
    const int64_t dim = x.shape()[axis];
    const int64_t inner = tensor_ops::product(x.shape(), axis + 1, x.shape().size());
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    dispatch_float(x.dtype(), "LpNormalization", [&](auto tag) {
      using T = typename decltype(tag)::type;
      using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
#pragma omp parallel for if (x.size() > tensor_ops::kParallelElements && outer > 1)
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
          const T* in = src + o * dim * inner + i;
          T* out = dst + o * dim * inner + i;
          A norm = 0;
          for (int64_t k = 0; k < dim; ++k) {
            const A v = static_cast<A>(in[k * inner]);
            norm += p_ == 1 ? std::abs(v) : v * v;
          }
          if (p_ == 2) norm = std::sqrt(norm);
          for (int64_t k = 0; k < dim; ++k) {
            out[k * inner] = T(norm == 0 ? A(0) : static_cast<A>(in[k * inner]) / norm);
          }
        }
      }
    });
  }

 private:
  int64_t axis_;
  int64_t p_;
};

}  // namespace

GRAFT_CPU_KERNELS(misc_lp_normalization) {
  const std::vector<DType> types = {DType::Float, DType::Double, DType::Float16, DType::BFloat16};
  reg.add({"", "LpNormalization", 1, 1 << 30, types, 0, make<LpNormalization>});
}

}  // namespace graft
