// The decision forest shared by TreeEnsembleClassifier, TreeEnsembleRegressor and TreeEnsemble:
// nodes and leaves in one array, built from either attribute encoding, checked once (children
// exist, no cycles) and then walked per row.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "exec/kernel.h"

namespace graft::ml {

enum class NodeMode : uint8_t { kLeq, kLt, kGte, kGt, kEq, kNeq, kMember, kLeaf };
enum class Aggregate { kAverage, kSum, kMin, kMax };

struct TreeNode {
  NodeMode mode = NodeMode::kLeaf;
  bool missing_true = false;  // a NaN feature takes the true branch
  int64_t feature = 0;
  double threshold = 0;
  int32_t true_child = -1;  // branches: indices into Forest::nodes
  int32_t false_child = -1;
  int32_t first = 0;  // leaves: range into Forest::weights; set membership: into Forest::members
  int32_t last = 0;
};

struct LeafWeight {
  int64_t target = 0;
  double value = 0;
};

class Forest {
 public:
  // The opset 1/3 encoding: nodes_* tuples identified by (tree id, node id), and the leaf
  // weights `prefix`_ids/_nodeids/_treeids/_weights ("target" or "class"). Fails naming the
  // first inconsistency.
  static Forest from_node_attrs(const KernelInfo& info, const std::string& prefix);
  // The opset 5 TreeEnsemble encoding: interior nodes, leaves and tree_roots.
  static Forest from_tree_ensemble(const KernelInfo& info);

  // The leaf reached from root `tree` for the row `x` (which holds at least num_features()).
  const TreeNode& leaf(size_t tree, const double* x) const;
  size_t num_trees() const { return roots_.size(); }
  // 1 + the largest feature index any node reads (0 for a forest of leaves).
  int64_t num_features() const { return max_feature_ + 1; }
  // 1 + the largest target (class) id of any leaf weight.
  int64_t num_targets() const { return max_target_ + 1; }
  const std::vector<LeafWeight>& weights() const { return weights_; }

 private:
  // Checks children and membership ranges and that no tree loops back on itself.
  void validate(const KernelInfo& info) const;

  std::vector<TreeNode> nodes_;
  std::vector<int32_t> roots_;
  std::vector<LeafWeight> weights_;
  std::vector<double> members_;
  int64_t max_feature_ = -1;
  int64_t max_target_ = -1;
};

// Per-row accumulation of leaf weights into target scores, as onnxruntime does: `has` marks the
// targets some leaf reached (MIN and MAX start from the first weight).
struct TargetScores {
  std::vector<double> value;
  std::vector<uint8_t> has;
  void reset(int64_t targets);
  void add(const TreeNode& leaf, const std::vector<LeafWeight>& weights, Aggregate aggregate);
};

// Final regression values: AVERAGE divides by the number of trees, then base_values (when there
// is one per target) are added. A MIN or MAX target that no leaf reached is 0 plus its base.
void regression_values(const TargetScores& scores, Aggregate aggregate, size_t trees,
                       const std::vector<double>& base, double* out);

Aggregate aggregate_attr(const KernelInfo& info);  // "SUM" (default), "AVERAGE", ...
Aggregate aggregate_from_code(const KernelInfo& info,
                              int64_t code);  // opset 5: 0 AVERAGE, 1 SUM, 2 MIN, 3 MAX

// The rows of a [N, F] (or [F]) input as doubles, checked against the features the forest reads.
std::vector<double> forest_input(const KernelContext& ctx, const Tensor& x, const Forest& forest,
                                 int64_t* rows, int64_t* stride);

}  // namespace graft::ml
