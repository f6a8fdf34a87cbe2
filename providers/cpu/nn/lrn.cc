// LRN: y = x / (bias + alpha / size * sum of x^2 over nearby channels) ^ beta, the window
// spanning floor((size - 1) / 2) channels before and ceil((size - 1) / 2) after.
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"

namespace graft {
namespace {

class LRN : public Kernel {
 public:
  explicit LRN(const KernelInfo& info)
      : alpha_(info.attr_float("alpha", 1e-4f)),
        beta_(info.attr_float("beta", 0.75f)),
        bias_(info.attr_float("bias", 1.0f)),
        size_(info.required_int("size")) {
    if (size_ <= 0) info.fail("size must be positive");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() < 2) ctx.fail("input must have rank 2 or more, got " + shape_to_string(x.shape()));
    const int64_t n = x.dim(0), c = x.dim(1);
    const int64_t inner = n * c > 0 ? x.size() / (n * c) : 0;
    const int64_t before = (size_ - 1) / 2, after = size_ - 1 - before;
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    dispatch_float(x.dtype(), "LRN", [&](auto tag) {
      using T = typename decltype(tag)::type;
      using Acc = cpu::AccumulateType<T>;
      const T* xp = x.data<T>();
      T* yp = y.data<T>();
      const Acc scale = static_cast<Acc>(alpha_) / static_cast<Acc>(size_);
#pragma omp parallel for collapse(2) if (x.size() > (1 << 14) && !omp_in_parallel())
      for (int64_t b = 0; b < n; ++b) {
        for (int64_t ch = 0; ch < c; ++ch) {
          const int64_t lo = std::max<int64_t>(0, ch - before);
          const int64_t hi = std::min<int64_t>(c - 1, ch + after);
          for (int64_t i = 0; i < inner; ++i) {
            Acc sum = 0;
            for (int64_t k = lo; k <= hi; ++k) {
              const Acc v = static_cast<Acc>(xp[(b * c + k) * inner + i]);
              sum += v * v;
            }
            const int64_t at = (b * c + ch) * inner + i;
            yp[at] = static_cast<T>(
                static_cast<Acc>(xp[at]) /
                std::pow(static_cast<Acc>(bias_) + scale * sum, static_cast<Acc>(beta_)));
          }
        }
      }
    });
  }

 private:
  float alpha_, beta_, bias_;
  int64_t size_;
};

}  // namespace

GRAFT_CPU_KERNELS(lrn) { reg.add({"", "LRN", 1, 1 << 30, kFloatTypes, 0, make<LRN>}); }

}  // namespace graft
