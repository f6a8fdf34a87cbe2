// Normalizer (ai.onnx.ml): scales each slice along axis 1 (the row of a [N, C] matrix) by its
// MAX, L1 or L2 norm; a slice whose divisor is zero is copied unchanged. The result is float.
#include <algorithm>
#include <cmath>
#include <limits>

#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft {
namespace {

enum class Norm { kMax, kL1, kL2 };

class Normalizer final : public Kernel {
 public:
  explicit Normalizer(const KernelInfo& info) {
    const std::string norm = info.attr_string("norm", "MAX");
    if (norm == "MAX") {
      norm_ = Norm::kMax;
    } else if (norm == "L1") {
      norm_ = Norm::kL1;
    } else if (norm == "L2") {
      norm_ = Norm::kL2;
    } else {
      info.fail("norm must be MAX, L1 or L2, got '" + norm + "'");
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() == 0) ctx.fail("X must have rank 1 or more");
    // Slices run along axis 1: `length` elements `inner` apart, `outer * inner` of them.
    const int64_t length = x.rank() == 1 ? x.dim(0) : x.dim(1);
    int64_t inner = 1;
    for (int64_t a = 2; a < x.rank(); ++a) inner *= x.dim(a);
    const int64_t outer = x.rank() == 1 ? 1 : x.dim(0);
    const std::vector<double> in = ml::values_as<double>(x, "Normalizer");
    Tensor& y = ctx.output(0, DType::Float, x.shape());
    float* out = y.data<float>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t base = o * length * inner + i;
        const double divisor = norm_of(in.data() + base, length, inner);
        for (int64_t k = 0; k < length; ++k) {
          const double v = in[static_cast<size_t>(base + k * inner)];
          out[base + k * inner] = static_cast<float>(divisor == 0 ? v : v / divisor);
        }
      }
    }
  }

 private:
  double norm_of(const double* v, int64_t length, int64_t step) const {
    double acc = norm_ == Norm::kMax ? std::numeric_limits<double>::lowest() : 0.0;
    for (int64_t k = 0; k < length; ++k) {
      const double e = v[k * step];
      if (norm_ == Norm::kMax) {
        acc = std::max(acc, e);
      } else if (norm_ == Norm::kL1) {
        acc += std::abs(e);
      } else {
        acc += e * e;
      }
    }
    if (length == 0) return 0;
    return norm_ == Norm::kL2 ? std::sqrt(acc) : acc;
  }

  Norm norm_ = Norm::kMax;
};

}  // namespace

GRAFT_CPU_KERNELS(ml_normalizer) {
  reg.add({ml::kMlDomain, "Normalizer", 1, 1 << 30, ml::kMlNumericTypes, 0, make<Normalizer>});
}

}  // namespace graft
