// Layout chains that copy a tensor only for a piece of it to be taken: PyTorch's exporter splits
// a fused q/k/v projection as unsqueeze -> transpose -> squeeze -> q, k, v = t[0], t[1], t[2],
// a full transposed copy of the projection before each third is copied out again.
//  - Squeeze(Transpose(Unsqueeze(x))) removing the axis the Unsqueeze added is one Transpose of
//    x (or none).
//  - Gather of one index (a scalar) from Transpose(x) is the Gather from x along the axis the
//    transpose moved there, followed by the rest of the permutation (often none).
// So the slices are taken straight from the projection, and nothing is transposed in between.
#include <algorithm>
#include <numeric>

#include "ir/constants.h"
#include "ir/transforms/optimize.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {
namespace {

// The node producing `value` when it is a default-domain `op` whose output only `reader` reads.
Node* sole_producer(const Graph& g, const std::string& value, const char* op, const Node* reader) {
  Node* n = g.producer(value);
  if (!n || n->op_type != op || !n->domain.empty() || n->outputs.size() != 1 ||
      g.is_graph_output(value))
    return nullptr;
  const auto readers = g.consumers(value);
  if (readers.size() != 1 || readers[0] != reader) return nullptr;
  return n;
}

// The single axis of a Squeeze or Unsqueeze (input 1 from opset 13, attribute before), or
// nullopt when there is not exactly one known axis.
std::optional<int64_t> single_axis(const Graph& g, const Node& n) {
  std::vector<int64_t> axes;
  if (n.inputs.size() > 1 && !n.inputs[1].empty()) {
    auto v = constant_ints(g, n.inputs[1]);
    if (!v) return std::nullopt;
    axes = *v;
  } else if (const Attribute* a = n.find_attr("axes")) {
    axes.assign(a->proto->ints().begin(), a->proto->ints().end());
  }
  if (axes.size() != 1) return std::nullopt;
  return axes[0];
}

std::vector<int64_t> perm_of(const Node& transpose) {
  const Attribute* p = transpose.find_attr("perm");
  if (!p) return {};
  return {p->proto->ints().begin(), p->proto->ints().end()};
}

bool is_identity(const std::vector<int64_t>& perm) {
  for (size_t i = 0; i < perm.size(); ++i) {
    if (perm[i] != static_cast<int64_t>(i)) return false;
  }
  return true;
}

// perm without position `drop`, its entries above perm[drop] lowered by one: the permutation
// of the remaining axes once axis perm[drop] of the input (and position drop of the output) is
// gone.
std::vector<int64_t> without(const std::vector<int64_t>& perm, size_t drop) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < perm.size(); ++i) {
    if (i != drop) out.push_back(perm[i] - (perm[i] > perm[drop] ? 1 : 0));
  }
  return out;
}

bool valid_perm(std::vector<int64_t> perm) {
  std::sort(perm.begin(), perm.end());
  for (size_t i = 0; i < perm.size(); ++i) {
    if (perm[i] != static_cast<int64_t>(i)) return false;
  }
  return true;
}

// Writes `value` as Transpose(source, perm), or as source itself for the identity.
void emit_transpose(Graph& g, size_t pos, const std::string& source, const std::string& value,
                    const std::vector<int64_t>& perm, const std::string& name) {
  Node t;
  t.name = name;
  if (is_identity(perm)) {
    t.op_type = "Identity";
  } else {
    t.op_type = "Transpose";
    t.attributes.push_back(ints_attribute("perm", perm));
  }
  t.inputs = {source};
  t.outputs = {value};
  g.insert_node(pos, std::move(t));
}

size_t position(const Graph& g, const Node* n) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i].get() == n) return i;
  }
  return g.nodes.size();
}

// Squeeze(Transpose(Unsqueeze(x, a), perm), b) with perm[b] == a.
bool fold_squeeze(Graph& g, Node& squeeze) {
  if (squeeze.op_type != "Squeeze" || !squeeze.domain.empty() || squeeze.outputs.size() != 1)
    return false;
  Node* transpose = sole_producer(g, squeeze.inputs[0], "Transpose", &squeeze);
  if (!transpose) return false;
  Node* unsqueeze = sole_producer(g, transpose->inputs[0], "Unsqueeze", transpose);
  if (!unsqueeze) return false;
  const std::vector<int64_t> perm = perm_of(*transpose);
  const auto a = single_axis(g, *unsqueeze), b = single_axis(g, squeeze);
  if (perm.empty() || !a || !b || !valid_perm(perm)) return false;
  const auto rank = static_cast<int64_t>(perm.size());
  const int64_t ua = *a < 0 ? *a + rank : *a, sb = *b < 0 ? *b + rank : *b;
  if (ua < 0 || ua >= rank || sb < 0 || sb >= rank || perm[static_cast<size_t>(sb)] != ua)
    return false;
  const std::string source = unsqueeze->inputs[0], value = squeeze.outputs[0];
  const std::string name = squeeze.name.empty() ? "" : squeeze.name + "/folded";
  const std::vector<int64_t> folded = without(perm, static_cast<size_t>(sb));
  const size_t pos = position(g, unsqueeze);
  g.value_info.erase(transpose->outputs[0]);
  g.value_info.erase(unsqueeze->outputs[0]);
  g.remove_node(&squeeze);
  g.remove_node(transpose);
  g.remove_node(unsqueeze);
  emit_transpose(g, std::min(pos, g.nodes.size()), source, value, folded, name);
  return true;
}

// Gather(Transpose(x, perm), scalar index, axis).
bool gather_through_transpose(Graph& g, Node& gather) {
  if (gather.op_type != "Gather" || !gather.domain.empty() || gather.inputs.size() != 2 ||
      gather.outputs.size() != 1)
    return false;
  // Through copies (PyTorch's .contiguous() exports as Identity).
  Node* transpose = g.producer(gather.inputs[0]);
  while (transpose && transpose->op_type == "Identity" && transpose->domain.empty())
    transpose = g.producer(transpose->inputs[0]);
  if (!transpose || transpose->op_type != "Transpose" || !transpose->domain.empty()) return false;
  // The index must be one number (a rank-0 constant): the gathered axis then disappears.
  const onnx::TensorProto* index =
      g.is_graph_input(gather.inputs[1]) ? nullptr : g.find_initializer(gather.inputs[1]);
  bool scalar = index && index->dims_size() == 0;
  if (!index) {
    const Node* c = g.producer(gather.inputs[1]);
    if (c && c->op_type == "Constant" && c->domain.empty()) {
      for (const auto& attr : c->attributes) {
        if (attr.name == "value" && attr.proto->t().dims_size() == 0) scalar = true;
        if (attr.name == "value_int") scalar = true;
      }
    }
  }
  if (!scalar) return false;
  const std::vector<int64_t> perm = perm_of(*transpose);
  if (perm.empty() || !valid_perm(perm)) return false;
  const auto rank = static_cast<int64_t>(perm.size());
  int64_t axis = 0;
  if (const Attribute* a = gather.find_attr("axis")) axis = a->proto->i();
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return false;
  const std::string source = transpose->inputs[0], value = gather.outputs[0];
  const std::vector<int64_t> rest = without(perm, static_cast<size_t>(axis));
  Node taken;
  taken.name = gather.name;
  taken.op_type = "Gather";
  taken.inputs = {source, gather.inputs[1]};
  taken.attributes.push_back(int_attribute("axis", perm[static_cast<size_t>(axis)]));
  const size_t pos = position(g, &gather);
  const std::string name = gather.name.empty() ? "" : gather.name + "/transpose";
  g.remove_node(&gather);
  if (is_identity(rest)) {
    taken.outputs = {value};
    g.insert_node(pos, std::move(taken));
  } else {
    taken.outputs = {value + "/untransposed"};
    g.insert_node(pos, std::move(taken));
    emit_transpose(g, pos + 1, value + "/untransposed", value, rest, name);
  }
  return true;
}

}  // namespace

int simplify_layout(Graph& graph) {
  int rewritten = 0;
  for (bool again = true; again;) {
    again = false;
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      Node& n = *graph.nodes[i];
      if (fold_squeeze(graph, n) || gather_through_transpose(graph, n)) {
        ++rewritten;
        again = true;
        break;  // positions moved
      }
    }
  }
  if (rewritten == 0) return 0;
  // Transposes and copies the rewrites left unread.
  for (size_t i = 0; i < graph.nodes.size();) {
    const Node& n = *graph.nodes[i];
    if ((n.op_type == "Transpose" || n.op_type == "Identity") && n.domain.empty() &&
        n.outputs.size() == 1 && graph.consumers(n.outputs[0]).empty() &&
        !graph.is_graph_output(n.outputs[0])) {
      graph.value_info.erase(n.outputs[0]);
      graph.remove_node(&n);
      i = 0;  // a removed node may leave its producer unread
      continue;
    }
    ++i;
  }
  graph.topological_sort();
  return rewritten;
}

}  // namespace graft::ir
