// com.graft.FusedMatMul: MatMul with either operand's last two axes swapped (transA, transB),
// read in place by the GEMM instead of copied by a Transpose, and an optional bias C added to
// every row of the product (one value per column, or a single value). Produced by the optimizer
// from Transpose -> MatMul and MatMul -> Add; a transposed operand has rank 2 or more. With C
// the output starts as C's rows and the GEMM accumulates onto them, so the bias costs no
// separate pass over the output.
#include <omp.h>

#include "exec/kernel.h"
#include "ir/names.h"
#include "providers/cpu/linalg/gemm_util.h"

namespace graft {
namespace {

class FusedMatMul : public Kernel {
 public:
  explicit FusedMatMul(const KernelInfo& info)
      : trans_a_(info.attr_int("transA", 0) != 0), trans_b_(info.attr_int("transB", 0) != 0) {}

  void compute(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const bool has_bias = ctx.has_input(2);
    const MatMulShape plan =
        plan_fused_matmul(ctx, a, b, has_bias ? &ctx.input(2) : nullptr, trans_a_, trans_b_);
    const int64_t m = plan.m, k = plan.k, n = plan.n;
    Tensor& y = ctx.output(0, a.dtype(), plan.out);
    const int64_t batch_count = shape_size(plan.batch);
    if (y.size() == 0) return;
    dispatch_float(a.dtype(), "FusedMatMul", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* ap = a.data<T>();
      const T* bp = b.data<T>();
      T* yp = y.data<T>();
      if (has_bias) {
        const Tensor& c = ctx.input(2);
        const T* cp = c.data<T>();
        const int64_t rows = y.size() / n;
        const bool scalar = c.size() == 1;
#pragma omp parallel for if (rows * n > (1 << 14))
        for (int64_t r = 0; r < rows; ++r) {
          T* row = yp + r * n;
          for (int64_t j = 0; j < n; ++j) row[j] = cp[scalar ? 0 : j];
        }
      }
      // One B for every batch and A stored row after row: a single (batch*M) x K product.
      if (!trans_a_ && b.size() == k * n &&
          shape_size(Shape(plan.a.begin(), plan.a.end() - 2)) == batch_count) {
        cpu::gemm<T>(false, trans_b_, batch_count * m, n, k, ap, bp, yp, has_bias);
        return;
      }
      const bool parallel = batch_count >= omp_get_max_threads() && m * n * k < (1 << 21);
#pragma omp parallel for if (parallel)
      for (int64_t i = 0; i < batch_count; ++i) {
        cpu::gemm<T>(trans_a_, trans_b_, m, n, k, ap + plan.a_index[static_cast<size_t>(i)] * m * k,
                     bp + plan.b_index[static_cast<size_t>(i)] * k * n, yp + i * m * n, has_bias);
      }
    });
  }

 private:
  bool trans_a_, trans_b_;
};

}  // namespace

GRAFT_CPU_KERNELS(fused_matmul) {
  reg.add({names::kDomain, "FusedMatMul", 1, 1 << 30, kFloatTypes, 0, make<FusedMatMul>});
}

}  // namespace graft
