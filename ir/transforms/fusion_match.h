// What the transformer fusions (fuse_gelu, fuse_layer_norm, fuse_attention) read from a graph
// while they match a pattern: scalar constants, sole readers, operands of binary nodes.
#pragma once

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "ir/model.h"

namespace graft::ir {

// The one float `value` holds when it is fixed when the graph is built (an initializer no
// input overrides, or a Constant node's value / value_float); nullopt otherwise.
GRAFT_API std::optional<float> scalar_float(const Graph& graph, const std::string& value);

// Whether `value` is `expected` to within a relative 1e-4 (exporters round constants to float).
inline bool is_scalar(const Graph& graph, const std::string& value, double expected) {
  const std::optional<float> v = scalar_float(graph, value);
  return v && std::fabs(*v - expected) <= 1e-4 * std::fabs(expected);
}

// An ai.onnx node of type `op`.
inline bool is_op(const Node* node, const char* op) {
  return node != nullptr && node->domain.empty() && node->op_type == op;
}

// The node that alone reads `value`, when nothing else (no other node, no graph output) does;
// nullptr otherwise.
GRAFT_API Node* sole_reader(const Graph& graph, const std::string& value);

// For a two-input node reading `operand`, the other input; nullptr when the node does not read
// it or reads it twice.
inline const std::string* other_operand(const Node& node, const std::string& operand) {
  if (node.inputs.size() != 2 || node.inputs[0] == node.inputs[1]) return nullptr;
  if (node.inputs[0] == operand) return &node.inputs[1];
  if (node.inputs[1] == operand) return &node.inputs[0];
  return nullptr;
}

// The dims `value`'s declared type gives, -1 for a dim it leaves open; nullopt when the rank is
// not known.
GRAFT_API std::optional<std::vector<int64_t>> known_dims(const Graph& graph,
                                                         const std::string& value);

// One element of a shape the graph computes at run time: `constant` when `value` is empty (as
// written: -1 and 0 keep their Reshape meanings), else dim `axis` of `value`.
struct ShapeDim {
  int64_t constant = -1;
  std::string value;
  int64_t axis = 0;
};

// The elements of the 1-D int64 tensor `shape` (a Reshape's target, say) when it is built from
// constants and Shape nodes through Gather, Slice (step 1), Unsqueeze, Squeeze and Concat, as
// exporters write `x.view(x.size(0), ...)`; nullopt otherwise.
GRAFT_API std::optional<std::vector<ShapeDim>> shape_dims(const Graph& graph,
                                                          const std::string& shape);

// The dims of `reshape`'s output as its target gives them: a 0 that copies becomes the input's
// dim, a -1 (or a target shape_dims cannot read, when the output's rank is recorded) the
// output's own dim. Nullopt when neither the target nor the output's rank is known.
GRAFT_API std::optional<std::vector<ShapeDim>> reshape_dims(const Graph& graph,
                                                            const Node& reshape);

// Whether `a` and `b` are the same size in every run: both fixed to one positive value (by a
// constant or a recorded dim), or the same dim of one tensor once followed back through the
// Transposes and Reshapes that moved it. False when that cannot be shown.
GRAFT_API bool same_dim(const Graph& graph, const ShapeDim& a, const ShapeDim& b);

// A float attribute (epsilon, scale) of a fused node.
GRAFT_API Attribute float_attribute(const std::string& name, float value);

// Removes `nodes` (matched and replaced) with the recorded types of their outputs, then the
// Constant nodes that fed them and are read no more.
GRAFT_API void remove_matched(Graph& graph, const std::vector<const Node*>& nodes);

}  // namespace graft::ir
