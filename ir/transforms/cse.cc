// Common-subexpression elimination: a node that repeats an earlier node (same domain, op,
// attributes and inputs) reads the earlier node's outputs instead of computing them again.
// Nested graphs are handled by optimize(), one scope at a time, so values never merge across
// scopes.
#include <algorithm>
#include <set>
#include <unordered_map>

#include "ir/transforms/optimize.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {
namespace {

// Ops whose outputs differ from run to run or from node to node.
const std::set<std::string> kNondeterministic = {
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
    "Multinomial",  "Bernoulli",        "Dropout"};

// The node's identity for merging, or "" when it must never be merged.
std::string key_of(const Node& n) {
  if (!n.domain.empty() || kNondeterministic.count(n.op_type)) return "";
  std::string key = n.op_type;
  for (const auto& i : n.inputs) key += '\x01' + i;
  key += '\x02';
  // Which outputs are written matters: a merged node must provide every output read.
  for (const auto& o : n.outputs) key += o.empty() ? '0' : '1';
  std::vector<const Attribute*> attrs;
  for (const auto& a : n.attributes) {
    if (!a.graphs.empty()) return "";
    attrs.push_back(&a);
  }
  std::sort(attrs.begin(), attrs.end(),
            [](const Attribute* a, const Attribute* b) { return a->name < b->name; });
  for (const Attribute* a : attrs) key += '\x03' + a->proto->SerializeAsString();
  return key;
}

}  // namespace

int eliminate_common_subexpressions(Graph& graph) {
  std::unordered_map<std::string, const Node*> seen;
  int merged = 0;
  for (size_t i = 0; i < graph.nodes.size();) {
    const Node& n = *graph.nodes[i];
    const std::string key = key_of(n);
    auto it = key.empty() ? seen.end() : seen.find(key);
    const bool names_output = std::any_of(n.outputs.begin(), n.outputs.end(),
                                          [&](auto& o) { return graph.is_graph_output(o); });
    if (it == seen.end() || names_output) {
      if (!key.empty() && !names_output) seen.emplace(key, &n);
      ++i;
      continue;
    }
    const std::vector<std::string> from = n.outputs, to = it->second->outputs;
    graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(i));
    for (size_t k = 0; k < from.size(); ++k) {
      if (from[k].empty()) continue;
      graph.replace_uses(from[k], to[k]);
      graph.value_info.erase(from[k]);
    }
    ++merged;
  }
  return merged;
}

}  // namespace graft::ir
