// Removes Identity nodes and Dropout nodes that are identities at inference (no mask output
// read, no training_mode input), rewiring their readers to the node's input.
#include <algorithm>

#include "ir/transforms/optimize.h"

namespace graft::ir {
namespace {

bool removable(const Graph& g, const Node& n) {
  if (!n.domain.empty() || n.inputs.empty() || n.inputs[0].empty() || n.outputs.empty())
    return false;
  if (n.op_type == "Identity") return n.outputs.size() == 1;
  if (n.op_type != "Dropout") return false;
  // The mask output must be absent or unread, and training mode must not be requested.
  if (n.outputs.size() > 1 && !n.outputs[1].empty()) {
    if (!g.consumers(n.outputs[1]).empty() || g.is_graph_output(n.outputs[1])) return false;
  }
  return n.inputs.size() < 3 || n.inputs[2].empty();
}

}  // namespace

int eliminate_identity(Graph& graph) {
  int removed = 0;
  for (size_t i = 0; i < graph.nodes.size();) {
    Node& n = *graph.nodes[i];
    // A graph output keeps its name, so an Identity that produces one stays.
    if (!removable(graph, n) || graph.is_graph_output(n.outputs[0])) {
      ++i;
      continue;
    }
    std::string from = n.outputs[0], to = n.inputs[0];
    graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(i));
    graph.replace_uses(from, to);
    graph.value_info.erase(from);
    ++removed;
  }
  return removed;
}

}  // namespace graft::ir
