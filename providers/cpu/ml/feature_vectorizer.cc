// FeatureVectorizer (ai.onnx.ml): concatenates its inputs' features into one float matrix.
// Input i contributes inputdimensions[i] columns, truncated or zero-padded; a 1-D input is one
// row, and higher ranks flatten everything after the first axis.
#include <algorithm>
#include <numeric>

#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft {
namespace {

class FeatureVectorizer final : public Kernel {
 public:
  explicit FeatureVectorizer(const KernelInfo& info) : dims_(info.attr_ints("inputdimensions")) {
    if (static_cast<int>(dims_.size()) != info.num_inputs()) {
      info.fail("inputdimensions has " + std::to_string(dims_.size()) + " entries for " +
                std::to_string(info.num_inputs()) + " inputs");
    }
    if (dims_.empty()) info.fail("needs at least one input");
    for (int64_t d : dims_) {
      if (d < 0) info.fail("inputdimensions must not be negative");
    }
    total_ = std::accumulate(dims_.begin(), dims_.end(), int64_t{0});
  }

  void compute(KernelContext& ctx) override {
    int64_t n = -1;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor& x = ctx.input(i);
      if (x.rank() == 0) ctx.fail("input " + std::to_string(i) + " is a scalar");
      const int64_t rows = x.rank() == 1 ? 1 : x.dim(0);
      if (n >= 0 && rows != n) {
        ctx.fail("input " + std::to_string(i) + " has " + std::to_string(rows) +
                 " rows, input 0 has " + std::to_string(n));
      }
      n = rows;
    }
    Tensor& y = ctx.output_zeroed(0, DType::Float, {n, total_});
    float* out = y.data<float>();
    int64_t offset = 0;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor& x = ctx.input(i);
      const int64_t width = n == 0 ? 0 : x.size() / n;
      const int64_t dim = dims_[static_cast<size_t>(i)];
      const int64_t copy = std::min(width, dim);
      dispatch_number(x.dtype(), "FeatureVectorizer", [&](auto tag) {
        using T = typename decltype(tag)::type;
        const T* in = x.data<T>();
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t c = 0; c < copy; ++c) {
            out[r * total_ + offset + c] =
                static_cast<float>(static_cast<double>(in[r * width + c]));
          }
        }
      });
      offset += dim;
    }
  }

 private:
  std::vector<int64_t> dims_;
  int64_t total_ = 0;
};

}  // namespace

GRAFT_CPU_KERNELS(ml_feature_vectorizer) {
  reg.add({ml::kMlDomain, "FeatureVectorizer", 1, 1 << 30, ml::kMlNumericTypes, 0,
           make<FeatureVectorizer>});
}

}  // namespace graft
