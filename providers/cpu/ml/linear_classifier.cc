// LinearClassifier (ai.onnx.ml): class scores X * W^T + b, the top class's label in Y and the
// post-transformed scores in Z. One score column with two labels is a binary model: the label is
// the positive one when the score is above zero, and Z holds [1 - s, s] (onnxruntime's layout;
// [logistic(-s), logistic(s)] under LOGISTIC).
#include <algorithm>

#include "exec/kernel.h"
#include "providers/cpu/ml/linear.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft {
namespace {

using ml::PostTransform;

class LinearClassifier final : public Kernel {
 public:
  explicit LinearClassifier(const KernelInfo& info)
      : transform_(ml::post_transform_attr(info)),
        labels_int_(info.attr_ints("classlabels_ints")),
        labels_string_(info.attr_strings("classlabels_strings")) {
    const std::vector<float> coefficients = info.attr_floats("coefficients");
    const std::vector<float> intercepts = info.attr_floats("intercepts");
    if (coefficients.empty()) info.fail("coefficients must not be empty");
    coefficients_.assign(coefficients.begin(), coefficients.end());
    intercepts_.assign(intercepts.begin(), intercepts.end());
    if (!labels_int_.empty() && !labels_string_.empty()) {
      info.fail("only one of classlabels_ints and classlabels_strings may be given");
    }
    using_strings_ = !labels_string_.empty();
    num_labels_ = static_cast<int64_t>(using_strings_ ? labels_string_.size() : labels_int_.size());
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const ml::Rows rows = ml::rows_of(ctx, x);
    const auto coef_count = static_cast<int64_t>(coefficients_.size());
    int64_t classes = static_cast<int64_t>(intercepts_.size());
    if (classes == 0) classes = rows.features == 0 ? 0 : coef_count / rows.features;
    // More coefficients than classes x features: the first classes x features are the matrix, as
    // onnxruntime reads them (converters of its day wrote models so, trained on more features).
    if (classes == 0 || classes * rows.features > coef_count ||
        (intercepts_.empty() && classes * rows.features != coef_count)) {
      ctx.fail("coefficients hold " + std::to_string(coef_count) + " values, which is not " +
               std::to_string(classes) + " classes of " + std::to_string(rows.features) +
               " features");
    }
    if (classes > 1 && num_labels_ > 0 && num_labels_ < classes) {
      ctx.fail(std::to_string(classes) + " classes but only " + std::to_string(num_labels_) +
               " labels");
    }
    const bool binary = classes == 1 && num_labels_ == 2;
    const int64_t width = binary ? 2 : classes;
    const std::vector<float> scores =
        ml::linear_scores(x, rows, coefficients_, intercepts_, classes);

    Tensor& y = ctx.output(0, using_strings_ ? DType::String : DType::Int64, {rows.n});
    Tensor& z = ctx.output(1, DType::Float, {rows.n, width});
    float* out = z.data<float>();
    for (int64_t r = 0; r < rows.n; ++r) {
      const float* s = scores.data() + r * classes;
      float* row = out + r * width;
      if (classes == 1) {
        set_label(y, r, *s > 0 ? 1 : 0);
        if (binary) {
          ml::write_binary_scores(*s, transform_, ml::SecondClass::kComplement, row);
          continue;
        }
        row[0] = *s;
      } else {
        set_label(y, r, std::max_element(s, s + classes) - s);
        std::copy(s, s + classes, row);
      }
      ml::transform_scores({row, static_cast<size_t>(width)}, transform_);
    }
  }

 private:
  // Class `index`'s label; without labels, the index itself (or "0"/"1").
  void set_label(Tensor& y, int64_t r, int64_t index) const {
    if (using_strings_) {
      y.data<std::string>()[r] =
          index < num_labels_ ? labels_string_[static_cast<size_t>(index)] : std::to_string(index);
    } else {
      y.data<int64_t>()[r] = index < num_labels_ ? labels_int_[static_cast<size_t>(index)] : index;
    }
  }

  PostTransform transform_;
  std::vector<double> coefficients_;
  std::vector<double> intercepts_;
  std::vector<int64_t> labels_int_;
  std::vector<std::string> labels_string_;
  bool using_strings_ = false;
  int64_t num_labels_ = 0;
};

}  // namespace

GRAFT_CPU_KERNELS(ml_linear_classifier) {
  reg.add({ml::kMlDomain, "LinearClassifier", 1, 1 << 30, ml::kMlNumericTypes, 0,
           make<LinearClassifier>});
}

}  // namespace graft
