// SVMClassifier (ai.onnx.ml), following libsvm as onnxruntime does. With support vectors
// (vectors_per_class) it is a one-vs-one SVC: each pair of classes votes and the label is the
// class with most votes; with prob_a/prob_b the pairwise scores become class probabilities by
// Platt scaling and pairwise coupling. Without support vectors it is a liblinear model: one
// linear score per class.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"
#include "providers/cpu/ml/svm_common.h"

namespace graft {
namespace {

using ml::PostTransform;

// libsvm's pairwise coupling (Wu, Lin and Weng 2004, method 2): class probabilities `p` from
// the pairwise probabilities r[i * k + j]. Computed in float, in onnxruntime's order, so the
// iteration stops at the same step.
void multiclass_probability(int64_t k, const std::vector<float>& r, float* p) {
  std::vector<float> q(static_cast<size_t>(k * k), 0.0f);
  std::vector<float> qp(static_cast<size_t>(k), 0.0f);
  const float eps = 0.005f / static_cast<float>(k);
  for (int64_t i = 0; i < k; ++i) {
    p[i] = 1.0f / static_cast<float>(k);
    for (int64_t j = 0; j < i; ++j) {
      q[i * k + i] += r[j * k + i] * r[j * k + i];
      q[i * k + j] = q[j * k + i];
    }
    for (int64_t j = i + 1; j < k; ++j) {
      q[i * k + i] += r[j * k + i] * r[j * k + i];
      q[i * k + j] = -r[j * k + i] * r[i * k + j];
    }
  }
  for (int iter = 0; iter < 100; ++iter) {
    float pqp = 0;
    for (int64_t i = 0; i < k; ++i) {
      qp[i] = 0;
      for (int64_t j = 0; j < k; ++j) qp[i] += q[i * k + j] * p[j];
      pqp += p[i] * qp[i];
    }
    float max_error = 0;
    for (int64_t i = 0; i < k; ++i) max_error = std::max(max_error, std::fabs(qp[i] - pqp));
    if (max_error < eps) break;
    for (int64_t i = 0; i < k; ++i) {
      const float diff = (-qp[i] + pqp) / q[i * k + i];
      p[i] += diff;
      pqp = (pqp + diff * (diff * q[i * k + i] + 2 * qp[i])) / (1 + diff) / (1 + diff);
      for (int64_t j = 0; j < k; ++j) {
        qp[j] = (qp[j] + diff * q[i * k + j]) / (1 + diff);
        p[j] /= (1 + diff);
      }
    }
  }
}

class SVMClassifier final : public Kernel {
 public:
  explicit SVMClassifier(const KernelInfo& info)
      : kernel_(ml::svm_kernel_attrs(info)),
        transform_(ml::post_transform_attr(info)),
        vectors_per_class_(info.attr_ints("vectors_per_class")),
        prob_a_(info.attr_floats("prob_a")),
        prob_b_(info.attr_floats("prob_b")),
        support_vectors_(info.attr_floats("support_vectors")),
        coefficients_(info.attr_floats("coefficients")),
        rho_(info.attr_floats("rho")),
        labels_int_(info.attr_ints("classlabels_ints")),
        labels_string_(info.attr_strings("classlabels_strings")) {
    if (prob_a_.size() != prob_b_.size()) info.fail("prob_a and prob_b differ in length");
    if (coefficients_.empty()) info.fail("coefficients must not be empty");
    if (rho_.empty()) info.fail("rho must not be empty");
    if (labels_int_.empty() == labels_string_.empty()) {
      info.fail("exactly one of classlabels_ints and classlabels_strings must be given");
    }
    using_strings_ = !labels_string_.empty();
    classes_ = static_cast<int64_t>(using_strings_ ? labels_string_.size() : labels_int_.size());
    for (int64_t c : vectors_per_class_) {
      if (c < 0) info.fail("vectors_per_class must not be negative");
      starts_.push_back(vector_count_);
      vector_count_ += c;
    }
    weights_all_positive_ =
        std::all_of(coefficients_.begin(), coefficients_.end(), [](float v) { return v >= 0; });
    const int64_t classifiers = classes_ * (classes_ - 1) / 2;
    if (vector_count_ > 0) {
      svc_ = true;
      features_ = static_cast<int64_t>(support_vectors_.size()) / vector_count_;
      if (features_ * vector_count_ != static_cast<int64_t>(support_vectors_.size())) {
        info.fail("support_vectors do not hold " + std::to_string(vector_count_) +
                  " whole vectors");
      }
      if (static_cast<int64_t>(vectors_per_class_.size()) != classes_) {
        info.fail("vectors_per_class must have one entry per class");
      }
      if (static_cast<int64_t>(coefficients_.size()) != (classes_ - 1) * vector_count_) {
        info.fail("coefficients must hold (classes - 1) x support vectors = " +
                  std::to_string((classes_ - 1) * vector_count_) + " values");
      }
      if (static_cast<int64_t>(rho_.size()) < classifiers)
        info.fail("rho must hold one value per class pair");
      if (!prob_a_.empty() && static_cast<int64_t>(prob_a_.size()) < classifiers) {
        info.fail("prob_a must hold one value per class pair");
      }
    } else {
      kernel_.type = ml::SvmKernel::kLinear;
      features_ = static_cast<int64_t>(coefficients_.size()) / classes_;
      if (features_ * classes_ != static_cast<int64_t>(coefficients_.size())) {
        info.fail("coefficients do not hold one whole vector per class");
      }
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const ml::Rows rows = ml::rows_of(ctx, x);
    if (rows.features != features_) {
      ctx.fail("X has " + std::to_string(rows.features) + " features, the model expects " +
               std::to_string(features_));
    }
    const std::vector<float> in = ml::values_as<float>(x, "SVMClassifier");
    const bool proba = !prob_a_.empty() && svc_;
    const int64_t classifiers = classes_ * (classes_ - 1) / 2;
    int64_t width = classes_;
    if (svc_ && !proba) width = classes_ > 2 ? classifiers : 2;

    Tensor& y = ctx.output(0, using_strings_ ? DType::String : DType::Int64, {rows.n});
    Tensor& z = ctx.output(1, DType::Float, {rows.n, width});
    float* out = z.data<float>();
    std::vector<float> kernels;
    if (!svc_) {
      ml::svm_kernel_dot(kernel_, in, rows.n, coefficients_, classes_, features_, rho_[0], kernels);
      for (int64_t r = 0; r < rows.n; ++r) {
        float* s = out + r * width;
        std::copy_n(kernels.data() + r * classes_, classes_, s);
        const int64_t best = std::max_element(s, s + classes_) - s;
        set_label(y, r, choose_linear(best, s[best]));
        ml::transform_scores({s, static_cast<size_t>(width)}, transform_);
      }
      return;
    }

    ml::svm_kernel_dot(kernel_, in, rows.n, support_vectors_, vector_count_, features_, 0.0f,
                       kernels);
    std::vector<float> pair_scores(static_cast<size_t>(classifiers));
    std::vector<int64_t> votes(static_cast<size_t>(classes_));
    std::vector<float> pairwise(static_cast<size_t>(classes_ * classes_));
    for (int64_t r = 0; r < rows.n; ++r) {
      pairwise_scores(kernels.data() + r * vector_count_, pair_scores, votes);
      float* s = out + r * width;
      if (proba) {
        probabilities(pair_scores, pairwise, s);
      } else if (classes_ > 2) {
        std::copy(pair_scores.begin(), pair_scores.end(), s);
      } else {
        s[0] = -pair_scores[0];
        s[1] = pair_scores[0];
      }
      const int64_t best = std::max_element(votes.begin(), votes.end()) - votes.begin();
      set_label(y, r, best);
      ml::transform_scores({s, static_cast<size_t>(width)}, transform_);
    }
  }

 private:
  // One score per class pair (i < j) from a row's kernel values; a positive score votes for i.
  void pairwise_scores(const float* k, std::vector<float>& scores,
                       std::vector<int64_t>& votes) const {
    std::fill(votes.begin(), votes.end(), 0);
    size_t index = 0;
    for (int64_t i = 0; i < classes_ - 1; ++i) {
      const int64_t si = starts_[static_cast<size_t>(i)],
                    ni = vectors_per_class_[static_cast<size_t>(i)];
      for (int64_t j = i + 1; j < classes_; ++j) {
        const int64_t sj = starts_[static_cast<size_t>(j)],
                      nj = vectors_per_class_[static_cast<size_t>(j)];
        double sum = 0;
        const float* ci = coefficients_.data() + (j - 1) * vector_count_;
        const float* cj = coefficients_.data() + i * vector_count_;
        for (int64_t m = si; m < si + ni; ++m) sum += ci[m] * k[m];
        for (int64_t m = sj; m < sj + nj; ++m) sum += cj[m] * k[m];
        sum += rho_[index];
        scores[index++] = static_cast<float>(sum);
        ++votes[static_cast<size_t>(sum > 0 ? i : j)];
      }
    }
  }

  void probabilities(const std::vector<float>& scores, std::vector<float>& pairwise,
                     float* p) const {
    std::fill(pairwise.begin(), pairwise.end(), 0.0f);
    size_t index = 0;
    for (int64_t i = 0; i < classes_; ++i) {
      for (int64_t j = i + 1; j < classes_; ++j, ++index) {
        // libsvm's sigmoid_predict: 1 / (1 + exp(score * A + B)), clamped away from 0 and 1.
        const float v = 1 - ml::logistic(scores[index] * prob_a_[index] + prob_b_[index]);
        const float clamped = std::min(std::max(v, 1.0e-7f), 1 - 1.0e-7f);
        pairwise[static_cast<size_t>(i * classes_ + j)] = clamped;
        pairwise[static_cast<size_t>(j * classes_ + i)] = 1 - clamped;
      }
    }
    multiclass_probability(classes_, pairwise, p);
  }

  // The label of a two-class liblinear model, as onnxruntime decides it.
  int64_t choose_linear(int64_t best, float best_score) const {
    if (classes_ != 2) return best;
    if (weights_all_positive_ && best_score >= 0.5f) return 1;
    if (best_score > 0 && !weights_all_positive_) return 1;
    return best;
  }

  void set_label(Tensor& y, int64_t r, int64_t index) const {
    if (using_strings_) {
      y.data<std::string>()[r] = labels_string_[static_cast<size_t>(index)];
    } else {
      y.data<int64_t>()[r] = labels_int_[static_cast<size_t>(index)];
    }
  }

  ml::SvmKernelParams kernel_;
  PostTransform transform_;
  std::vector<int64_t> vectors_per_class_;
  std::vector<int64_t> starts_;
  std::vector<float> prob_a_;
  std::vector<float> prob_b_;
  std::vector<float> support_vectors_;
  std::vector<float> coefficients_;
  std::vector<float> rho_;
  std::vector<int64_t> labels_int_;
  std::vector<std::string> labels_string_;
  bool using_strings_ = false;
  bool svc_ = false;
  bool weights_all_positive_ = true;
  int64_t classes_ = 0;
  int64_t vector_count_ = 0;
  int64_t features_ = 0;
};

}  // namespace

GRAFT_CPU_KERNELS(ml_svm_classifier) {
  reg.add(
      {ml::kMlDomain, "SVMClassifier", 1, 1 << 30, ml::kMlNumericTypes, 0, make<SVMClassifier>});
}

}  // namespace graft
