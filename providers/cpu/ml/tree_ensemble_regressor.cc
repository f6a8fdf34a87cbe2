// TreeEnsembleRegressor (ai.onnx.ml, opsets 1, 3 and the deprecated 5): the leaf weights each
// tree reaches, aggregated per target (SUM, AVERAGE, MIN, MAX), plus base_values, then the
// post-transform. Opset 3 adds *_as_tensor attributes holding doubles.
#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"
#include "providers/cpu/ml/tree_ensemble_common.h"

namespace graft {
namespace {

class TreeEnsembleRegressor final : public Kernel {
 public:
  explicit TreeEnsembleRegressor(const KernelInfo& info)
      : forest_(ml::Forest::from_node_attrs(info, "target")),
        aggregate_(ml::aggregate_attr(info)),
        transform_(ml::post_transform_attr(info)),
        base_(ml::floats_or_tensor(info, "base_values")),
        targets_(info.attr_int("n_targets", 0)) {
    if (targets_ <= 0) targets_ = std::max<int64_t>(forest_.num_targets(), 1);
    if (forest_.num_targets() > targets_) {
      info.fail("a leaf weight targets " + std::to_string(forest_.num_targets() - 1) +
                " but n_targets is " + std::to_string(targets_));
    }
  }

  void compute(KernelContext& ctx) override {
    int64_t rows = 0, stride = 0;
    const std::vector<double> x = ml::forest_input(ctx, ctx.input(0), forest_, &rows, &stride);
    Tensor& y = ctx.output(0, DType::Float, {rows, targets_});
    float* out = y.data<float>();
#pragma omp parallel for if (rows * static_cast <int64_t>(forest_.num_trees()) > 4096)
    for (int64_t r = 0; r < rows; ++r) {
      ml::TargetScores scores;
      scores.reset(targets_);
      for (size_t t = 0; t < forest_.num_trees(); ++t) {
        scores.add(forest_.leaf(t, x.data() + r * stride), forest_.weights(), aggregate_);
      }
      std::vector<double> values(static_cast<size_t>(targets_));
      ml::regression_values(scores, aggregate_, forest_.num_trees(), base_, values.data());
      float* row = out + r * targets_;
      for (int64_t t = 0; t < targets_; ++t)
        row[t] = static_cast<float>(values[static_cast<size_t>(t)]);
      ml::transform_scores({row, static_cast<size_t>(targets_)}, transform_);
    }
  }

 private:
  ml::Forest forest_;
  ml::Aggregate aggregate_;
  ml::PostTransform transform_;
  std::vector<double> base_;
  int64_t targets_;
};

}  // namespace

GRAFT_CPU_KERNELS(ml_tree_ensemble_regressor) {
  reg.add({ml::kMlDomain, "TreeEnsembleRegressor", 1, 1 << 30, ml::kMlNumericTypes, 0,
           make<TreeEnsembleRegressor>});
}

}  // namespace graft
