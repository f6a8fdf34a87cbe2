#include "providers/cpu/ml/tree_ensemble_common.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "providers/cpu/ml/ml_common.h"

namespace graft::ml {
namespace {

NodeMode mode_from_string(const KernelInfo& info, const std::string& s) {
  if (s == "BRANCH_LEQ") return NodeMode::kLeq;
  if (s == "BRANCH_LT") return NodeMode::kLt;
  if (s == "BRANCH_GTE") return NodeMode::kGte;
  if (s == "BRANCH_GT") return NodeMode::kGt;
  if (s == "BRANCH_EQ") return NodeMode::kEq;
  if (s == "BRANCH_NEQ") return NodeMode::kNeq;
  if (s == "LEAF") return NodeMode::kLeaf;
  info.fail("unknown node mode '" + s + "'");
}

void check_length(const KernelInfo& info, const std::string& name, size_t size, size_t expected) {
  if (size != expected) {
    info.fail(name + " has " + std::to_string(size) + " entries, expected " +
              std::to_string(expected));
  }
}

}  // namespace

Forest Forest::from_node_attrs(const KernelInfo& info, const std::string& prefix) {
  const std::vector<int64_t> tree_ids = info.attr_ints("nodes_treeids");
  const std::vector<int64_t> node_ids = info.attr_ints("nodes_nodeids");
  const std::vector<int64_t> features = info.attr_ints("nodes_featureids");
  const std::vector<std::string> modes = info.attr_strings("nodes_modes");
  const std::vector<double> values = floats_or_tensor(info, "nodes_values");
  const std::vector<int64_t> true_ids = info.attr_ints("nodes_truenodeids");
  const std::vector<int64_t> false_ids = info.attr_ints("nodes_falsenodeids");
  const std::vector<int64_t> missing = info.attr_ints("nodes_missing_value_tracks_true");
  const size_t n = tree_ids.size();
  if (n == 0) info.fail("the ensemble has no nodes");
  check_length(info, "nodes_nodeids", node_ids.size(), n);
  check_length(info, "nodes_featureids", features.size(), n);
  check_length(info, "nodes_modes", modes.size(), n);
  check_length(info, "nodes_values", values.size(), n);
  check_length(info, "nodes_truenodeids", true_ids.size(), n);
  check_length(info, "nodes_falsenodeids", false_ids.size(), n);
  if (missing.size() > n) check_length(info, "nodes_missing_value_tracks_true", missing.size(), n);
  if (n >= (size_t{1} << 31)) info.fail("too many nodes");

  Forest f;
  std::map<std::pair<int64_t, int64_t>, int32_t> index;
  std::map<int64_t, bool> seen_tree;
  f.nodes_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (!index.emplace(std::make_pair(tree_ids[i], node_ids[i]), static_cast<int32_t>(i)).second) {
      info.fail("node " + std::to_string(node_ids[i]) + " of tree " + std::to_string(tree_ids[i]) +
                " is defined twice");
    }
    if (seen_tree.emplace(tree_ids[i], true).second) f.roots_.push_back(static_cast<int32_t>(i));
    TreeNode& node = f.nodes_[i];
    node.mode = mode_from_string(info, modes[i]);
    node.feature = features[i];
    node.threshold = values[i];
    node.missing_true = i < missing.size() && missing[i] == 1;
  }
  auto find = [&](int64_t tree, int64_t node, const char* what) {
    auto it = index.find({tree, node});
    if (it == index.end()) {
      info.fail(std::string(what) + " refers to node " + std::to_string(node) + " of tree " +
                std::to_string(tree) + ", which does not exist");
    }
    return it->second;
  };
  for (size_t i = 0; i < n; ++i) {
    TreeNode& node = f.nodes_[i];
    if (node.mode == NodeMode::kLeaf) continue;
    if (node.feature < 0)
      info.fail("node " + std::to_string(i) + " reads a negative feature index");
    f.max_feature_ = std::max(f.max_feature_, node.feature);
    node.true_child = find(tree_ids[i], true_ids[i], "nodes_truenodeids");
    node.false_child = find(tree_ids[i], false_ids[i], "nodes_falsenodeids");
  }

  const std::vector<int64_t> w_ids = info.attr_ints(prefix + "_ids");
  const std::vector<int64_t> w_nodes = info.attr_ints(prefix + "_nodeids");
  const std::vector<int64_t> w_trees = info.attr_ints(prefix + "_treeids");
  const std::vector<double> w_values = floats_or_tensor(info, prefix + "_weights");
  check_length(info, prefix + "_nodeids", w_nodes.size(), w_ids.size());
  check_length(info, prefix + "_treeids", w_trees.size(), w_ids.size());
  check_length(info, prefix + "_weights", w_values.size(), w_ids.size());
  // Weights grouped by leaf, in their original order within a leaf. Weights on interior nodes
  // are ignored, as onnxruntime does (old converters wrote some).
  std::vector<std::pair<int32_t, size_t>> order;
  for (size_t i = 0; i < w_ids.size(); ++i) {
    const int32_t node = find(w_trees[i], w_nodes[i], (prefix + "_nodeids").c_str());
    if (w_ids[i] < 0) info.fail(prefix + "_ids holds a negative id");
    if (f.nodes_[static_cast<size_t>(node)].mode == NodeMode::kLeaf) order.emplace_back(node, i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t k = 0; k < order.size(); ++k) {
    TreeNode& leaf = f.nodes_[static_cast<size_t>(order[k].first)];
    if (k == 0 || order[k - 1].first != order[k].first) leaf.first = static_cast<int32_t>(k);
    leaf.last = static_cast<int32_t>(k + 1);
    const size_t i = order[k].second;
    f.weights_.push_back({w_ids[i], w_values[i]});
    f.max_target_ = std::max(f.max_target_, w_ids[i]);
  }
  f.validate(info);
  return f;
}

Forest Forest::from_tree_ensemble(const KernelInfo& info) {
  const std::vector<int64_t> roots = info.attr_ints("tree_roots");
  const std::vector<int64_t> features = info.attr_ints("nodes_featureids");
  const std::vector<double> modes = tensor_attr_doubles(info, "nodes_modes");
  const std::vector<double> splits = tensor_attr_doubles(info, "nodes_splits");
  const std::vector<int64_t> true_ids = info.attr_ints("nodes_truenodeids");
  const std::vector<int64_t> true_leafs = info.attr_ints("nodes_trueleafs");
  const std::vector<int64_t> false_ids = info.attr_ints("nodes_falsenodeids");
  const std::vector<int64_t> false_leafs = info.attr_ints("nodes_falseleafs");
  const std::vector<int64_t> missing = info.attr_ints("nodes_missing_value_tracks_true");
  const std::vector<double> members = tensor_attr_doubles(info, "membership_values");
  const std::vector<int64_t> targets = info.attr_ints("leaf_targetids");
  const std::vector<double> leaf_weights = tensor_attr_doubles(info, "leaf_weights");
  const size_t n = features.size();
  check_length(info, "nodes_modes", modes.size(), n);
  check_length(info, "nodes_splits", splits.size(), n);
  check_length(info, "nodes_truenodeids", true_ids.size(), n);
  check_length(info, "nodes_trueleafs", true_leafs.size(), n);
  check_length(info, "nodes_falsenodeids", false_ids.size(), n);
  check_length(info, "nodes_falseleafs", false_leafs.size(), n);
  if (!missing.empty()) check_length(info, "nodes_missing_value_tracks_true", missing.size(), n);
  check_length(info, "leaf_weights", leaf_weights.size(), targets.size());
  const size_t leaves = targets.size();
  if (n + leaves >= (size_t{1} << 31)) info.fail("too many nodes");

  Forest f;
  f.nodes_.resize(n + leaves);
  for (size_t j = 0; j < leaves; ++j) {
    if (targets[j] < 0) info.fail("leaf_targetids holds a negative id");
    TreeNode& leaf = f.nodes_[n + j];
    leaf.first = static_cast<int32_t>(j);
    leaf.last = static_cast<int32_t>(j + 1);
    f.weights_.push_back({targets[j], leaf_weights[j]});
    f.max_target_ = std::max(f.max_target_, targets[j]);
  }
  auto child = [&](size_t i, int64_t id, int64_t is_leaf) {
    const size_t limit = is_leaf ? leaves : n;
    if (id < 0 || static_cast<size_t>(id) >= limit) {
      info.fail("node " + std::to_string(i) + " refers to " + (is_leaf ? "leaf " : "node ") +
                std::to_string(id) + ", which does not exist");
    }
    return static_cast<int32_t>(is_leaf ? n + static_cast<size_t>(id) : static_cast<size_t>(id));
  };
  size_t next_member = 0;
  for (size_t i = 0; i < n; ++i) {
    TreeNode& node = f.nodes_[i];
    const double code = modes[i];
    if (!(code >= 0 && code <= 6)) info.fail("node " + std::to_string(i) + " has an unknown mode");
    node.mode = static_cast<NodeMode>(static_cast<int>(code));
    node.feature = features[i];
    if (node.feature < 0)
      info.fail("node " + std::to_string(i) + " reads a negative feature index");
    f.max_feature_ = std::max(f.max_feature_, node.feature);
    node.threshold = splits[i];
    node.missing_true = !missing.empty() && missing[i] == 1;
    node.true_child = child(i, true_ids[i], true_leafs[i]);
    node.false_child = child(i, false_ids[i], false_leafs[i]);
    if (node.mode == NodeMode::kMember) {
      // The next run of membership_values, up to a NaN.
      if (next_member >= members.size())
        info.fail("membership_values has no set for node " + std::to_string(i));
      node.first = static_cast<int32_t>(next_member);
      while (next_member < members.size() && !std::isnan(members[next_member])) ++next_member;
      if (next_member == members.size()) info.fail("membership_values must end each set with NaN");
      node.last = static_cast<int32_t>(next_member++);
    }
  }
  if (next_member != members.size())
    info.fail("membership_values holds more sets than set-membership nodes");
  for (int64_t r : roots) {
    if (r < 0 || static_cast<size_t>(r) >= n)
      info.fail("tree root " + std::to_string(r) + " is not a node");
    const auto i = static_cast<size_t>(r);
    // A tree that is a single leaf: both branches name the same leaf.
    if (true_leafs[i] && false_leafs[i] && true_ids[i] == false_ids[i]) {
      f.roots_.push_back(f.nodes_[i].true_child);
    } else {
      f.roots_.push_back(static_cast<int32_t>(i));
    }
  }
  f.members_ = members;
  f.validate(info);
  return f;
}

void Forest::validate(const KernelInfo& info) const {
  // Depth-first walk from every root: 0 unvisited, 1 on the current path, 2 finished.
  std::vector<uint8_t> state(nodes_.size(), 0);
  std::vector<std::pair<int32_t, int>> stack;
  for (int32_t root : roots_) {
    if (state[static_cast<size_t>(root)] == 2) continue;
    state[static_cast<size_t>(root)] = 1;
    stack.emplace_back(root, 0);
    while (!stack.empty()) {
      auto& [v, k] = stack.back();
      const TreeNode& node = nodes_[static_cast<size_t>(v)];
      if (node.mode == NodeMode::kLeaf || k == 2) {
        state[static_cast<size_t>(v)] = 2;
        stack.pop_back();
        continue;
      }
      const int32_t c = k++ == 0 ? node.true_child : node.false_child;
      if (state[static_cast<size_t>(c)] == 1)
        info.fail("the trees contain a cycle through node " + std::to_string(c));
      if (state[static_cast<size_t>(c)] == 0) {
        state[static_cast<size_t>(c)] = 1;
        stack.emplace_back(c, 0);
      }
    }
  }
}

const TreeNode& Forest::leaf(size_t tree, const double* x) const {
  const TreeNode* node = &nodes_[static_cast<size_t>(roots_[tree])];
  while (node->mode != NodeMode::kLeaf) {
    const double v = x[node->feature];
    bool go_true = false;
    switch (node->mode) {
      case NodeMode::kLeq:
        go_true = v <= node->threshold;
        break;
      case NodeMode::kLt:
        go_true = v < node->threshold;
        break;
      case NodeMode::kGte:
        go_true = v >= node->threshold;
        break;
      case NodeMode::kGt:
        go_true = v > node->threshold;
        break;
      case NodeMode::kEq:
        go_true = v == node->threshold;
        break;
      case NodeMode::kNeq:
        go_true = v != node->threshold;
        break;
      case NodeMode::kMember:
        go_true = std::find(members_.begin() + node->first, members_.begin() + node->last, v) !=
                  members_.begin() + node->last;
        break;
      case NodeMode::kLeaf:
        break;
    }
    if (!go_true && node->missing_true && std::isnan(v)) go_true = true;
    node = &nodes_[static_cast<size_t>(go_true ? node->true_child : node->false_child)];
  }
  return *node;
}

void TargetScores::reset(int64_t targets) {
  value.assign(static_cast<size_t>(targets), 0.0);
  has.assign(static_cast<size_t>(targets), 0);
}

void TargetScores::add(const TreeNode& leaf, const std::vector<LeafWeight>& weights,
                       Aggregate aggregate) {
  for (int32_t k = leaf.first; k < leaf.last; ++k) {
    const LeafWeight& w = weights[static_cast<size_t>(k)];
    const auto t = static_cast<size_t>(w.target);
    switch (aggregate) {
      case Aggregate::kSum:
      case Aggregate::kAverage:
        value[t] += w.value;
        break;
      case Aggregate::kMin:
        value[t] = has[t] ? std::min(value[t], w.value) : w.value;
        break;
      case Aggregate::kMax:
        value[t] = has[t] ? std::max(value[t], w.value) : w.value;
        break;
    }
    has[t] = 1;
  }
}

void regression_values(const TargetScores& scores, Aggregate aggregate, size_t trees,
                       const std::vector<double>& base, double* out) {
  const size_t n = scores.value.size();
  const bool use_base = base.size() == n;
  for (size_t t = 0; t < n; ++t) {
    double v = scores.has[t] ? scores.value[t] : 0.0;
    if (aggregate == Aggregate::kAverage && trees > 0) v /= static_cast<double>(trees);
    out[t] = v + (use_base ? base[t] : 0.0);
  }
}

Aggregate aggregate_attr(const KernelInfo& info) {
  const std::string s = info.attr_string("aggregate_function", "SUM");
  if (s == "SUM") return Aggregate::kSum;
  if (s == "AVERAGE") return Aggregate::kAverage;
  if (s == "MIN") return Aggregate::kMin;
  if (s == "MAX") return Aggregate::kMax;
  info.fail("unknown aggregate_function '" + s + "'");
}

Aggregate aggregate_from_code(const KernelInfo& info, int64_t code) {
  switch (code) {
    case 0:
      return Aggregate::kAverage;
    case 1:
      return Aggregate::kSum;
    case 2:
      return Aggregate::kMin;
    case 3:
      return Aggregate::kMax;
    default:
      info.fail("unknown aggregate_function " + std::to_string(code));
  }
}

std::vector<double> forest_input(const KernelContext& ctx, const Tensor& x, const Forest& forest,
                                 int64_t* rows, int64_t* stride) {
  const Rows r = rows_of(ctx, x);
  if (r.features < forest.num_features()) {
    ctx.fail("the trees read feature " + std::to_string(forest.num_features() - 1) + " but X has " +
             std::to_string(r.features) + " features");
  }
  *rows = r.n;
  *stride = r.features;
  return values_as<double>(x, "TreeEnsemble");
}

}  // namespace graft::ml
