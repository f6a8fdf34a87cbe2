// Trilu: keeps the upper or lower triangle of the last two dims, zeroing the rest.
#include <algorithm>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

class Trilu final : public Kernel {
 public:
  explicit Trilu(const KernelInfo& info) : upper_(info.attr_int("upper", 1) != 0) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() < 2) ctx.fail("input must have rank >= 2, got " + shape_to_string(x.shape()));
    int64_t k = 0;
    if (ctx.has_input(1)) {
      const Tensor& kt = ctx.input(1);
      if (kt.size() != 1) ctx.fail("k must be a scalar");
      k = kt.scalar_as_int();
    }
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    const int64_t rows = x.dim(x.rank() - 2), cols = x.dim(x.rank() - 1);
    const int64_t matrices = rows * cols == 0 ? 0 : x.size() / (rows * cols);
    tensor_ops::dispatch_copyable(x.dtype(), "Trilu", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
#pragma omp parallel for if (x.size() > tensor_ops::kParallelElements)
      for (int64_t m = 0; m < matrices; ++m) {
        for (int64_t i = 0; i < rows; ++i) {
          // Kept columns: j >= i + k (upper) or j <= i + k (lower).
          const int64_t edge = std::clamp<int64_t>(upper_ ? i + k : i + k + 1, 0, cols);
          const int64_t offset = (m * rows + i) * cols;
          const int64_t keep_begin = upper_ ? edge : 0, keep_end = upper_ ? cols : edge;
          std::fill(dst + offset, dst + offset + keep_begin, T{});
          std::copy(src + offset + keep_begin, src + offset + keep_end, dst + offset + keep_begin);
          std::fill(dst + offset + keep_end, dst + offset + cols, T{});
        }
      }
    });
  }

 private:
  bool upper_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_trilu) { reg.add({"", "Trilu", 14, 1 << 30, {}, 0, make<Trilu>}); }

}  // namespace graft
