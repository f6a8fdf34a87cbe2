// Removes ai.onnx nodes whose outputs nothing reads (graph outputs and nested graphs count as
// readers) and initializers no node reads. Nodes of other domains may have effects beyond
// their outputs (collectives, in-place updates) and always stay.
#include <algorithm>
#include <unordered_set>

#include "ir/transforms/optimize.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {

int eliminate_dead_nodes(Graph& graph) {
  std::unordered_set<std::string> read;
  for (const auto& o : graph.outputs) read.insert(o.name);
  int removed = 0;
  // Backwards: a node's readers come after it, so its fate is known when it is reached.
  for (size_t i = graph.nodes.size(); i-- > 0;) {
    const Node& n = *graph.nodes[i];
    const bool used = std::any_of(n.outputs.begin(), n.outputs.end(),
                                  [&](const auto& o) { return !o.empty() && read.count(o); });
    if (!used && n.domain.empty()) {
      for (const auto& o : n.outputs) graph.value_info.erase(o);
      graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(i));
      ++removed;
      continue;
    }
    read.insert(n.inputs.begin(), n.inputs.end());
    for (const auto& a : n.attributes) {
      for (const auto& g : a.graphs) {
        for (const auto& v : g->free_variables()) read.insert(v);
      }
    }
  }
  auto unread = [&](const std::shared_ptr<onnx::TensorProto>& t) {
    return !read.count(t->name()) && !graph.is_graph_input(t->name());
  };
  const auto before = graph.initializers.size();
  graph.initializers.erase(
      std::remove_if(graph.initializers.begin(), graph.initializers.end(), unread),
      graph.initializers.end());
  return removed + static_cast<int>(before - graph.initializers.size());
}

}  // namespace graft::ir
