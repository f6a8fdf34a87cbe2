// Bypasses nodes that do nothing: each reader of the node's output reads the value the node
// would have passed through, and the node is removed. Two movement ops in a row that amount to
// one (Transpose of Transpose, Reshape of Reshape) become that one.
#include <algorithm>
#include <numeric>
#include <optional>
#include <set>

#include "ir/constants.h"
#include "ir/transforms/optimize.h"
#include "ir/transforms/value_types.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {
namespace {

const Node* standard_producer(const Graph& g, const std::string& value, const char* op_type) {
  const Node* p = g.producer(value);
  return p && p->domain.empty() && p->op_type == op_type ? p : nullptr;
}

std::optional<std::vector<int64_t>> perm_of(const Node& n) {
  const Attribute* a = n.find_attr("perm");
  if (!a) return std::nullopt;
  return std::vector<int64_t>(a->proto->ints().begin(), a->proto->ints().end());
}

bool is_identity_perm(const std::vector<int64_t>& perm) {
  for (size_t i = 0; i < perm.size(); ++i) {
    if (perm[i] != static_cast<int64_t>(i)) return false;
  }
  return true;
}

// Squeeze/Unsqueeze axes (attribute before opset 13, input after), made non-negative for a
// tensor of rank `rank` (-1: unknown, then negative axes give nullopt), as a set.
std::optional<std::set<int64_t>> axes_of(const Graph& g, const Node& n, int64_t rank) {
  std::optional<std::vector<int64_t>> axes;
  if (const Attribute* a = n.find_attr("axes")) {
    axes = std::vector<int64_t>(a->proto->ints().begin(), a->proto->ints().end());
  } else if (n.inputs.size() > 1 && !n.inputs[1].empty()) {
    axes = constant_ints(g, n.inputs[1]);
  }
  if (!axes || axes->empty()) return std::nullopt;
  std::set<int64_t> out;
  for (int64_t a : *axes) {
    if (a < 0 && rank < 0) return std::nullopt;
    out.insert(a < 0 ? a + rank : a);
  }
  return out;
}

// The rank of `value` when its type says, else -1.
int64_t rank_of(const Graph& g, const std::string& value) {
  const onnx::TypeProto* t = g.type_of(value);
  if (!t || !t->has_tensor_type() || !t->tensor_type().has_shape()) return -1;
  return t->tensor_type().shape().dim_size();
}

// Dropout at inference: no mask output read and no training_mode input.
bool is_inference_dropout(const Graph& g, const Node& n) {
  if (n.outputs.size() > 1 && !n.outputs[1].empty()) {
    if (!g.consumers(n.outputs[1]).empty() || g.is_graph_output(n.outputs[1])) return false;
  }
  return n.inputs.size() < 3 || n.inputs[2].empty();
}

// The value node `n` passes through unchanged, or "" when it computes something. May rewrite
// `n` into a cheaper equivalent (a composed Transpose, a Reshape of the earlier input), counted
// in `rewrites`.
std::string passes_through(const Graph& g, Node& n, int* rewrites) {
  const std::string& x = n.inputs[0];
  const std::string& y = n.outputs[0];
  if (n.op_type == "Identity") return n.outputs.size() == 1 ? x : "";
  if (n.op_type == "Dropout") return is_inference_dropout(g, n) ? x : "";
  if (n.op_type == "Cast") {
    const Attribute* to = n.find_attr("to");
    const int32_t from = elem_type(g, x);
    return to && from != 0 && to->proto->i() == from ? x : "";
  }
  if (n.op_type == "Transpose") {
    auto perm = perm_of(n);
    if (!perm) return "";
    if (is_identity_perm(*perm)) return x;
    const Node* first = standard_producer(g, x, "Transpose");
    auto first_perm = first ? perm_of(*first) : std::nullopt;
    if (!first_perm || first_perm->size() != perm->size()) return "";
    // y[i] = t[perm[i]] = x[first_perm[perm[i]]]
    std::vector<int64_t> composed(perm->size());
    for (size_t i = 0; i < perm->size(); ++i)
      composed[i] = (*first_perm)[static_cast<size_t>((*perm)[i])];
    if (is_identity_perm(composed)) return first->inputs[0];
    n.inputs[0] = first->inputs[0];
    for (auto& a : n.attributes) {
      if (a.name == "perm") a = ints_attribute("perm", composed);
    }
    ++*rewrites;
    return "";
  }
  if (n.op_type == "Reshape" || n.op_type == "Expand" || n.op_type == "Flatten") {
    auto in = static_dims(g, x), out = static_dims(g, y);
    if (in && out && *in == *out) return x;
    if (n.op_type != "Reshape" || n.inputs.size() < 2) return "";
    // A shape without 0 (or with allowzero) does not depend on the input's dims, so the
    // Reshape may read what the earlier movement op read.
    const Node* p = g.producer(x);
    if (!p || !p->domain.empty() || p->inputs.empty() ||
        !(p->op_type == "Reshape" || p->op_type == "Flatten" || p->op_type == "Squeeze" ||
          p->op_type == "Unsqueeze"))
      return "";
    auto shape = constant_ints(g, n.inputs[1]);
    const Attribute* allowzero = n.find_attr("allowzero");
    const bool zero_copies = !allowzero || allowzero->proto->i() == 0;
    if (!shape || (zero_copies && std::count(shape->begin(), shape->end(), 0) > 0)) return "";
    n.inputs[0] = p->inputs[0];
    ++*rewrites;
    return "";
  }
  if (n.op_type == "Squeeze" || n.op_type == "Unsqueeze") {
    const Node* p = standard_producer(g, x, n.op_type == "Squeeze" ? "Unsqueeze" : "Squeeze");
    if (!p) return "";
    // Both axes lists index the tensor with the added dims: y's input for Squeeze, y for
    // Unsqueeze.
    const int64_t rank = rank_of(g, n.op_type == "Squeeze" ? x : y);
    auto mine = axes_of(g, n, rank), theirs = axes_of(g, *p, rank);
    return mine && theirs && *mine == *theirs ? p->inputs[0] : "";
  }
  return "";
}

}  // namespace

int eliminate_noops(Graph& graph) {
  int changes = 0;
  for (size_t i = 0; i < graph.nodes.size();) {
    Node& n = *graph.nodes[i];
    if (!n.domain.empty() || n.inputs.empty() || n.inputs[0].empty() || n.outputs.empty() ||
        n.outputs[0].empty()) {
      ++i;
      continue;
    }
    const std::string to = passes_through(graph, n, &changes);
    // A graph output keeps its name, so the node that produces one stays.
    if (to.empty() || graph.is_graph_output(n.outputs[0])) {
      ++i;
      continue;
    }
    const std::string from = n.outputs[0];
    graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(i));
    graph.replace_uses(from, to);
    graph.value_info.erase(from);
    ++changes;
  }
  return changes;
}

}  // namespace graft::ir
