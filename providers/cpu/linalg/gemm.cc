// Gemm: Y = alpha * op(A) * op(B) + beta * C, with C unidirectionally broadcast to [M, N].
// A float B that is an initializer is packed once as alpha * op(B) (packed_gemm.h); beta * C is
// then the GEMM's bias when C is one row, packed too when it is an initializer.
#include <omp.h>

#include <memory>
#include <type_traits>
#include <vector>

#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"
#include "providers/cpu/linalg/packed_gemm.h"

namespace graft {
namespace {

class Gemm : public Kernel {
 public:
  explicit Gemm(const KernelInfo& info)
      : trans_a_(info.attr_int("transA", 0) != 0),
        trans_b_(info.attr_int("transB", 0) != 0),
        alpha_(info.attr_float("alpha", 1.0f)),
        beta_(info.attr_float("beta", 1.0f)),
        packed_(cpu::pack_constant(info, 1, trans_b_, alpha_)) {
    const Tensor* c = info.has_input(2) ? info.constant_input(2) : nullptr;
    // A constant C of one row (or one value) becomes the bias, scaled by beta, once.
    if (packed_ && c && c->dtype() == DType::Float && c->on_host() &&
        (c->rank() < 2 || c->dim(0) == 1) && (c->size() == 1 || c->size() == packed_->n())) {
      bias_.resize(static_cast<size_t>(packed_->n()));
      for (int64_t j = 0; j < packed_->n(); ++j)
        bias_[static_cast<size_t>(j)] = beta_ * c->data<float>()[c->size() == 1 ? 0 : j];
      c_source_ = Tensor(c->dtype(), c->shape(), nullptr);
    }
  }

  std::vector<int> packed_inputs() const override {
    if (!packed_) return {};
    return c_source_.defined() ? std::vector<int>{1, 2} : std::vector<int>{1};
  }

  void compute(KernelContext& ctx) override {
    if (packed_) return compute_packed(ctx);
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
  void compute_packed(KernelContext& ctx) {
    const Tensor& a = ctx.input(0);
    // A packed C is never read again, whatever the run holds in its place.
    const bool has_c = beta_ != 0.0f && (c_source_.defined() || ctx.has_input(2));
    const Tensor* c = !has_c ? nullptr : c_source_.defined() ? &c_source_ : &ctx.input(2);
    const GemmShape s = plan_gemm(ctx, a, packed_->source(), c, trans_a_, trans_b_);
    Tensor& y = ctx.output(0, a.dtype(), {s.m, s.n});
    if (y.size() == 0) return;
    const float* ap = a.data<float>();
    std::vector<float> a_rows;
    if (trans_a_) {
      a_rows.resize(static_cast<size_t>(s.m * s.k));
      for (int64_t i = 0; i < s.m; ++i)
        for (int64_t p = 0; p < s.k; ++p)
          a_rows[static_cast<size_t>(i * s.k + p)] = ap[p * s.m + i];
      ap = a_rows.data();
    }
    float* yp = y.data<float>();
    if (c == nullptr || c_source_.defined()) {
      cpu::packed_gemm(s.m, ap, s.k, *packed_, c ? bias_.data() : nullptr, cpu::Activation::None,
                       yp, s.n);
      return;
    }
    // C from the run: a row is the bias, anything else is added after the product.
    const float* cp = c->data<float>();
    std::vector<float> bias;
    if (s.c_rows == 1) {
      bias.resize(static_cast<size_t>(s.n));
      for (int64_t j = 0; j < s.n; ++j)
        bias[static_cast<size_t>(j)] = beta_ * cp[s.c_cols == 1 ? 0 : j];
    }
    cpu::packed_gemm(s.m, ap, s.k, *packed_, bias.empty() ? nullptr : bias.data(),
                     cpu::Activation::None, yp, s.n);
    if (!bias.empty()) return;
#pragma omp parallel for if (s.m * s.n > (1 << 16) && !omp_in_parallel())
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j)
        yp[i * s.n + j] += beta_ * cp[i * s.c_cols + (s.c_cols == 1 ? 0 : j)];
  }

  bool trans_a_, trans_b_;
  float alpha_, beta_;
  std::unique_ptr<const cpu::PackedB> packed_;
  // beta * C over the n columns when C is a constant row, packed; c_source_ its dtype and shape.
  std::vector<float> bias_;
  Tensor c_source_;
};

const std::vector<DType> kGemmTypes = {DType::Float, DType::Double, DType::Float16, DType::BFloat16,
                                       DType::Int32, DType::Int64,  DType::UInt32,  DType::UInt64};

}  // namespace

GRAFT_CPU_KERNELS(gemm) { reg.add({"", "Gemm", 1, 1 << 30, kGemmTypes, 0, make<Gemm>}); }

}  // namespace graft
