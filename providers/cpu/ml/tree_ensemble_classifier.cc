// TreeEnsembleClassifier (ai.onnx.ml, opsets 1, 3 and the deprecated 5): per-class sums of the
// leaf weights the trees reach, plus base_values, post-transformed into Z; Y is the top class.
//
// Two-class models whose weights all name one class carry a single score, expanded to two
// columns with onnxruntime's conventions, which converters such as skl2onnx rely on:
//   weights all >= 0: the label is positive when the score exceeds 0.5; Z = [1 - s, s];
//   mixed weights:    the label is positive when the score exceeds 0;   Z = [-s, s];
//   under LOGISTIC, Z = [logistic(-s), logistic(s)] (see ml::write_binary_scores).
#include <algorithm>
#include <set>

#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"
#include "providers/cpu/ml/tree_ensemble_common.h"

namespace graft {
namespace {

using ml::PostTransform;

class TreeEnsembleClassifier final : public Kernel {
 public:
  explicit TreeEnsembleClassifier(const KernelInfo& info)
      : forest_(ml::Forest::from_node_attrs(info, "class")),
        transform_(ml::post_transform_attr(info)),
        base_(ml::floats_or_tensor(info, "base_values")),
        labels_int_(info.attr_ints("classlabels_int64s")),
        labels_string_(info.attr_strings("classlabels_strings")) {
    if (labels_int_.empty() == labels_string_.empty()) {
      info.fail("exactly one of classlabels_int64s and classlabels_strings must be given");
    }
    using_strings_ = !labels_string_.empty();
    classes_ = static_cast<int64_t>(using_strings_ ? labels_string_.size() : labels_int_.size());
    if (forest_.num_targets() > classes_) {
      info.fail("class id " + std::to_string(forest_.num_targets() - 1) + " is out of range for " +
                std::to_string(classes_) + " class labels");
    }
    if (static_cast<int64_t>(base_.size()) > classes_ && classes_ > 2) {
      info.fail("base_values holds more values than there are classes");
    }
    std::set<int64_t> ids;
    for (const auto& w : forest_.weights()) {
      ids.insert(w.target);
      all_positive_ = all_positive_ && w.value >= 0;
    }
    binary_case_ = classes_ == 2 && ids.size() == 1;
  }

  void compute(KernelContext& ctx) override {
    int64_t rows = 0, stride = 0;
    const std::vector<double> x = ml::forest_input(ctx, ctx.input(0), forest_, &rows, &stride);
    Tensor& y = ctx.output(0, using_strings_ ? DType::String : DType::Int64, {rows});
    Tensor& z = ctx.output(1, DType::Float, {rows, classes_});
    float* out = z.data<float>();
    std::vector<int64_t> labels(static_cast<size_t>(rows));
#pragma omp parallel for if (rows * static_cast <int64_t>(forest_.num_trees()) > 4096)
    for (int64_t r = 0; r < rows; ++r) {
      ml::TargetScores scores;
      scores.reset(classes_);
      for (size_t t = 0; t < forest_.num_trees(); ++t) {
        scores.add(forest_.leaf(t, x.data() + r * stride), forest_.weights(), ml::Aggregate::kSum);
      }
      float* row = out + r * classes_;
      if (classes_ > 2) {
        labels[static_cast<size_t>(r)] = finalize_multiclass(scores, row);
      } else if (binary_case_) {
        labels[static_cast<size_t>(r)] = finalize_binary(scores, row);
      } else {
        labels[static_cast<size_t>(r)] = finalize_plain(scores, row);
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const auto k = static_cast<size_t>(labels[static_cast<size_t>(r)]);
      if (using_strings_) {
        y.data<std::string>()[r] = labels_string_[k];
      } else {
        y.data<int64_t>()[r] = labels_int_[k];
      }
    }
  }

 private:
  // Three or more classes: base values count as scores; the top class is the largest score
  // among the classes that have one.
  int64_t finalize_multiclass(ml::TargetScores& s, float* row) const {
    for (size_t k = 0; k < base_.size(); ++k) {
      s.value[k] += base_[k];
      s.has[k] = 1;
    }
    int64_t best = -1;
    for (int64_t k = 0; k < classes_; ++k) {
      const auto i = static_cast<size_t>(k);
      if (s.has[i] && (best < 0 || s.value[i] > s.value[static_cast<size_t>(best)])) best = k;
      row[k] = static_cast<float>(s.has[i] ? s.value[i] : 0.0);
    }
    ml::transform_scores({row, static_cast<size_t>(classes_)}, transform_);
    return std::max<int64_t>(best, 0);
  }

  // Two classes, every weight for the same class. As in onnxruntime, a class that no leaf
  // reached scores 0 even when it has a base value.
  int64_t finalize_binary(const ml::TargetScores& s, float* row) const {
    double s0 = s.value[0], s1 = s.value[1];
    bool h0 = s.has[0] != 0;
    const bool h1 = s.has[1] != 0;
    bool single = false;
    if (base_.size() == 2) {
      if (h1) {
        s1 += base_[1];
        s0 = -s1;
        h0 = true;
      } else {
        s0 += base_[0];
        s1 += base_[1];
      }
    } else if (base_.size() == 1) {
      s0 += base_[0];
      single = !h1;
    } else {
      single = !h1;
    }
    const double pos = (!single && h1) ? s1 : (h0 ? s0 : 0.0);
    const bool positive = all_positive_ ? pos > 0.5 : pos > 0;
    if (!single) {
      row[0] = static_cast<float>(h0 ? s0 : 0.0);
      row[1] = static_cast<float>(h1 ? s1 : 0.0);
      ml::transform_scores({row, 2}, transform_);
    } else {
      const auto score = static_cast<float>(h0 ? s0 : 0.0);
      ml::write_binary_scores(
          score, transform_,
          all_positive_ ? ml::SecondClass::kComplement : ml::SecondClass::kSigned, row);
    }
    return positive ? 1 : 0;
  }

  // One class, or two classes that each have weights: scores plus base values, top class wins.
  int64_t finalize_plain(const ml::TargetScores& s, float* row) const {
    for (int64_t k = 0; k < classes_; ++k) {
      const auto i = static_cast<size_t>(k);
      double v = s.has[i] ? s.value[i] : 0.0;
      if (base_.size() == static_cast<size_t>(classes_)) v += base_[i];
      row[k] = static_cast<float>(v);
    }
    ml::transform_scores({row, static_cast<size_t>(classes_)}, transform_);
    return std::max_element(row, row + classes_) - row;
  }

  ml::Forest forest_;
  PostTransform transform_;
  std::vector<double> base_;
  std::vector<int64_t> labels_int_;
  std::vector<std::string> labels_string_;
  bool using_strings_ = false;
  bool binary_case_ = false;
  bool all_positive_ = true;
  int64_t classes_ = 0;
};

}  // namespace

GRAFT_CPU_KERNELS(ml_tree_ensemble_classifier) {
  reg.add({ml::kMlDomain, "TreeEnsembleClassifier", 1, 1 << 30, ml::kMlNumericTypes, 0,
           make<TreeEnsembleClassifier>});
}

}  // namespace graft
