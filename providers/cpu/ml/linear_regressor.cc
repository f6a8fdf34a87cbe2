// LinearRegressor (ai.onnx.ml): Y = X * W^T + b for `targets` outputs, then the post-transform.
#include "exec/kernel.h"
#include "providers/cpu/ml/linear.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft {
namespace {

class LinearRegressor final : public Kernel {
 public:
  explicit LinearRegressor(const KernelInfo& info)
      : transform_(ml::post_transform_attr(info)), targets_(info.attr_int("targets", 1)) {
    const std::vector<float> coefficients = info.attr_floats("coefficients");
    const std::vector<float> intercepts = info.attr_floats("intercepts");
    coefficients_.assign(coefficients.begin(), coefficients.end());
    intercepts_.assign(intercepts.begin(), intercepts.end());
    if (targets_ < 1) info.fail("targets must be positive, got " + std::to_string(targets_));
    if (!intercepts_.empty() && static_cast<int64_t>(intercepts_.size()) != targets_) {
      info.fail("intercepts hold " + std::to_string(intercepts_.size()) + " values for " +
                std::to_string(targets_) + " targets");
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const ml::Rows rows = ml::rows_of(ctx, x);
    if (static_cast<int64_t>(coefficients_.size()) != targets_ * rows.features) {
      ctx.fail("coefficients hold " + std::to_string(coefficients_.size()) + " values, expected " +
               std::to_string(targets_) + " targets x " + std::to_string(rows.features) +
               " features");
    }
    const std::vector<float> scores =
        ml::linear_scores(x, rows, coefficients_, intercepts_, targets_);
    Tensor& y = ctx.output(0, DType::Float, {rows.n, targets_});
    float* out = y.data<float>();
    std::copy(scores.begin(), scores.end(), out);
    for (int64_t r = 0; r < rows.n; ++r) {
      ml::transform_scores({out + r * targets_, static_cast<size_t>(targets_)}, transform_);
    }
  }

 private:
  ml::PostTransform transform_;
  int64_t targets_;
  std::vector<double> coefficients_;
  std::vector<double> intercepts_;
};

}  // namespace

GRAFT_CPU_KERNELS(ml_linear_regressor) {
  reg.add({ml::kMlDomain, "LinearRegressor", 1, 1 << 30, ml::kMlNumericTypes, 0,
           make<LinearRegressor>});
}

}  // namespace graft
