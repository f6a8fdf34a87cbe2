// Gemm: Y = alpha * op(A) * op(B) + beta * C, with C unidirectionally broadcast to [M, N].
#include <omp.h>

#include <type_traits>

#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"

namespace graft {
namespace {

class Gemm : public Kernel {
 public:
  explicit Gemm(const KernelInfo& info)
      : trans_a_(info.attr_int("transA", 0) != 0),
        trans_b_(info.attr_int("transB", 0) != 0),
        alpha_(info.attr_float("alpha", 1.0f)),
        beta_(info.attr_float("beta", 1.0f)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const Tensor* c = ctx.has_input(2) && beta_ != 0.0f ? &ctx.input(2) : nullptr;
    const GemmShape s = plan_gemm(ctx, a, b, c, trans_a_, trans_b_);
    const int64_t m = s.m, n = s.n, k = s.k, c_rows = s.c_rows, c_cols = s.c_cols;
    Tensor& y = ctx.output(0, a.dtype(), {m, n});
    if (y.size() == 0) return;

    dispatch_number(a.dtype(), "Gemm", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* yp = y.data<T>();
      auto c_at = [&](int64_t i, int64_t j) {
        return c->data<T>()[(c_rows == 1 ? 0 : i) * c_cols + (c_cols == 1 ? 0 : j)];
      };
      if constexpr (std::is_same_v<T, float>) {
        if (c != nullptr) {
#pragma omp parallel for if (m * n > (1 << 16) && !omp_in_parallel())
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) yp[i * n + j] = beta_ * c_at(i, j);
        }
        cpu::sgemm(trans_a_, trans_b_, m, n, k, alpha_, a.data<float>(), a.dim(1), b.data<float>(),
                   b.dim(1), c != nullptr ? 1.0f : 0.0f, yp, n);
      } else {
        cpu::gemm<T>(trans_a_, trans_b_, m, n, k, a.data<T>(), b.data<T>(), yp);
        if (alpha_ == 1.0f && c == nullptr) return;
        const bool exact = std::is_integral_v<T> && alpha_ == 1.0f && beta_ == 1.0f;
        using Compute = std::conditional_t<std::is_integral_v<T>, double, cpu::AccumulateType<T>>;
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            T& out = yp[i * n + j];
            if constexpr (std::is_integral_v<T>) {
              if (exact) {
                out =
                    static_cast<T>(static_cast<uint64_t>(out) + static_cast<uint64_t>(c_at(i, j)));
                continue;
              }
            }
            Compute v = static_cast<Compute>(alpha_) * static_cast<Compute>(out);
            if (c != nullptr) v += static_cast<Compute>(beta_) * static_cast<Compute>(c_at(i, j));
            out = static_cast<T>(v);
          }
        }
      }
    });
  }

 private:
  bool trans_a_, trans_b_;
  float alpha_, beta_;
};

const std::vector<DType> kGemmTypes = {DType::Float, DType::Double, DType::Float16, DType::BFloat16,
                                       DType::Int32, DType::Int64,  DType::UInt32,  DType::UInt64};

}  // namespace

GRAFT_CPU_KERNELS(gemm) { reg.add({"", "Gemm", 1, 1 << 30, kGemmTypes, 0, make<Gemm>}); }

}  // namespace graft
