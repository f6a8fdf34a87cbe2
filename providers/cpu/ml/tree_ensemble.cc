// TreeEnsemble (ai.onnx.ml opset 5): the successor of TreeEnsembleRegressor/Classifier. Interior
// nodes and leaves are separate lists, modes and aggregate/post-transform are integers, and the
// output has X's type. BRANCH_MEMBER nodes test membership in a NaN-delimited set.
#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"
#include "providers/cpu/ml/tree_ensemble_common.h"

namespace graft {
namespace {

class TreeEnsemble final : public Kernel {
 public:
  explicit TreeEnsemble(const KernelInfo& info)
      : forest_(ml::Forest::from_tree_ensemble(info)),
        aggregate_(ml::aggregate_from_code(info, info.attr_int("aggregate_function", 1))),
        transform_(ml::post_transform_from_code(info, info.attr_int("post_transform", 0))),
        targets_(info.attr_int("n_targets", 0)) {
    if (targets_ <= 0) targets_ = std::max<int64_t>(forest_.num_targets(), 1);
    if (forest_.num_targets() > targets_) {
      info.fail("leaf_targetids holds " + std::to_string(forest_.num_targets() - 1) +
                " but n_targets is " + std::to_string(targets_));
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& input = ctx.input(0);
    int64_t rows = 0, stride = 0;
    const std::vector<double> x = ml::forest_input(ctx, input, forest_, &rows, &stride);
    std::vector<double> values(static_cast<size_t>(rows * targets_));
#pragma omp parallel for if (rows * static_cast <int64_t>(forest_.num_trees()) > 4096)
    for (int64_t r = 0; r < rows; ++r) {
      ml::TargetScores scores;
      scores.reset(targets_);
      for (size_t t = 0; t < forest_.num_trees(); ++t) {
        scores.add(forest_.leaf(t, x.data() + r * stride), forest_.weights(), aggregate_);
      }
      double* row = values.data() + r * targets_;
      ml::regression_values(scores, aggregate_, forest_.num_trees(), {}, row);
      if (transform_ != ml::PostTransform::None) {
        std::vector<float> f(row, row + targets_);
        ml::transform_scores(f, transform_);
        std::copy(f.begin(), f.end(), row);
      }
    }
    Tensor& y = ctx.output(0, input.dtype(), {rows, targets_});
    dispatch_float(input.dtype(), "TreeEnsemble", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* out = y.data<T>();
      for (size_t i = 0; i < values.size(); ++i) out[i] = static_cast<T>(values[i]);
    });
  }

 private:
  ml::Forest forest_;
  ml::Aggregate aggregate_;
  ml::PostTransform transform_;
  int64_t targets_;
};

const std::vector<DType> kTypes = {DType::Float, DType::Double, DType::Float16};

}  // namespace

GRAFT_CPU_KERNELS(ml_tree_ensemble) {
  reg.add({ml::kMlDomain, "TreeEnsemble", 5, 1 << 30, kTypes, 0, make<TreeEnsemble>});
}

}  // namespace graft
