// com.graft.FusedMatMul: MatMul with either operand's last two axes swapped (transA, transB),
// read in place by the GEMM instead of copied by a Transpose, an optional bias C added to every
// row of the product (one value per column, or a single value) and an optional activation
// (string attribute `activation`: Relu, Gelu (erf form), Tanh or Sigmoid). Produced by the
// optimizer from Transpose -> MatMul, MatMul -> Add and an activation after them; a transposed
// operand has rank 2 or more.
//
// A 2-D float B that is an initializer is packed once, when the kernel is built, and the bias and
// activation are applied to each tile of the product as it leaves the GEMM (packed_gemm.h).
// Otherwise the output starts as C's rows, the GEMM accumulates onto them, and the activation is
// a pass over the output.
#include <omp.h>

#include <memory>
#include <vector>

#include "exec/kernel.h"
#include "ir/names.h"
#include "providers/cpu/linalg/gemm_util.h"
#include "providers/cpu/linalg/packed_gemm.h"

namespace graft {
namespace {

class FusedMatMul : public Kernel {
 public:
  explicit FusedMatMul(const KernelInfo& info)
      : trans_a_(info.attr_int("transA", 0) != 0),
        trans_b_(info.attr_int("transB", 0) != 0),
        activation_(cpu::activation_attr(info)),
        packed_(trans_a_ ? nullptr : cpu::pack_constant(info, 1, trans_b_)) {}

  std::vector<int> packed_inputs() const override {
    return packed_ ? std::vector<int>{1} : std::vector<int>{};
  }

  void compute(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = packed_ ? packed_->source() : ctx.input(1);
    const bool has_bias = ctx.has_input(2);
    const MatMulShape plan =
        plan_fused_matmul(ctx, a, b, has_bias ? &ctx.input(2) : nullptr, trans_a_, trans_b_);
    Tensor& y = ctx.output(0, a.dtype(), plan.out);
    if (y.size() == 0) return;
    if (packed_) {
      // B is 2-D, so every batch of A is one block of rows of a single product.
      std::vector<float> bias;
      if (has_bias) {
        const Tensor& c = ctx.input(2);
        bias.assign(static_cast<size_t>(plan.n), c.data<float>()[0]);
        if (c.size() != 1) bias.assign(c.data<float>(), c.data<float>() + plan.n);
      }
      cpu::packed_gemm(shape_size(plan.batch) * plan.m, a.data<float>(), plan.k, *packed_,
                       has_bias ? bias.data() : nullptr, activation_, y.data<float>(), plan.n);
      return;
    }
    compute_unpacked(ctx, a, b, plan, y);
  }

 private:
  void compute_unpacked(KernelContext& ctx, const Tensor& a, const Tensor& b,
                        const MatMulShape& plan, Tensor& y) {
    const bool has_bias = ctx.has_input(2);
    const int64_t m = plan.m, k = plan.k, n = plan.n;
    const int64_t batch_count = shape_size(plan.batch);
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
      } else {
        const bool parallel = batch_count >= omp_get_max_threads() && m * n * k < (1 << 21);
#pragma omp parallel for if (parallel)
        for (int64_t i = 0; i < batch_count; ++i) {
          cpu::gemm<T>(trans_a_, trans_b_, m, n, k,
                       ap + plan.a_index[static_cast<size_t>(i)] * m * k,
                       bp + plan.b_index[static_cast<size_t>(i)] * k * n, yp + i * m * n, has_bias);
        }
      }
      cpu::apply_activation(activation_, yp, y.size());
    });
  }

  bool trans_a_, trans_b_;
  cpu::Activation activation_;
  std::unique_ptr<const cpu::PackedB> packed_;
};

}  // namespace

GRAFT_CPU_KERNELS(fused_matmul) {
  reg.add({names::kDomain, "FusedMatMul", 1, 1 << 30, kFloatTypes, 0, make<FusedMatMul>});
}

}  // namespace graft
