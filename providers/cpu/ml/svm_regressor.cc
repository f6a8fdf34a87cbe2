// SVMRegressor (ai.onnx.ml): sum_j coef_j K(x, sv_j) + rho[0] with n_supports support vectors,
// or the linear model x . coef + rho[0] without; one_class maps the result to +1 / -1.
#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"
#include "providers/cpu/ml/svm_common.h"

namespace graft {
namespace {

class SVMRegressor final : public Kernel {
 public:
  explicit SVMRegressor(const KernelInfo& info)
      : kernel_(ml::svm_kernel_attrs(info)),
        transform_(ml::post_transform_attr(info)),
        support_vectors_(info.attr_floats("support_vectors")),
        coefficients_(info.attr_floats("coefficients")),
        rho_(info.attr_floats("rho")),
        supports_(info.attr_int("n_supports", 0)),
        one_class_(info.attr_int("one_class", 0) != 0) {
    if (coefficients_.empty()) info.fail("coefficients must not be empty");
    if (rho_.empty()) info.fail("rho must not be empty");
    if (supports_ < 0) info.fail("n_supports must not be negative");
    if (supports_ > 0) {
      features_ = static_cast<int64_t>(support_vectors_.size()) / supports_;
      if (features_ * supports_ != static_cast<int64_t>(support_vectors_.size())) {
        info.fail("support_vectors do not hold " + std::to_string(supports_) + " whole vectors");
      }
      if (static_cast<int64_t>(coefficients_.size()) != supports_) {
        info.fail("coefficients must hold one value per support vector");
      }
    } else {
      kernel_.type = ml::SvmKernel::kLinear;
      features_ = static_cast<int64_t>(coefficients_.size());
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const ml::Rows rows = ml::rows_of(ctx, x);
    if (rows.features != features_) {
      ctx.fail("X has " + std::to_string(rows.features) + " features, the model expects " +
               std::to_string(features_));
    }
    const std::vector<float> in = ml::values_as<float>(x, "SVMRegressor");
    Tensor& y = ctx.output(0, DType::Float, {rows.n, 1});
    float* out = y.data<float>();
    std::vector<float> kernels;
    if (supports_ > 0) {
      ml::svm_kernel_dot(kernel_, in, rows.n, support_vectors_, supports_, features_, 0.0f,
                         kernels);
      for (int64_t r = 0; r < rows.n; ++r) {
        double sum = rho_[0];
        for (int64_t j = 0; j < supports_; ++j)
          sum += static_cast<double>(coefficients_[j]) * kernels[r * supports_ + j];
        out[r] = static_cast<float>(sum);
      }
    } else {
      ml::svm_kernel_dot(kernel_, in, rows.n, coefficients_, 1, features_, rho_[0], kernels);
      std::copy(kernels.begin(), kernels.end(), out);
    }
    for (int64_t r = 0; r < rows.n; ++r) {
      if (one_class_) {
        out[r] = out[r] > 0 ? 1.0f : -1.0f;
      } else {
        ml::transform_scores({out + r, 1}, transform_);
      }
    }
  }

 private:
  ml::SvmKernelParams kernel_;
  ml::PostTransform transform_;
  std::vector<float> support_vectors_;
  std::vector<float> coefficients_;
  std::vector<float> rho_;
  int64_t supports_;
  bool one_class_;
  int64_t features_ = 0;
};

}  // namespace

GRAFT_CPU_KERNELS(ml_svm_regressor) {
  reg.add({ml::kMlDomain, "SVMRegressor", 1, 1 << 30, ml::kMlNumericTypes, 0, make<SVMRegressor>});
}

}  // namespace graft
