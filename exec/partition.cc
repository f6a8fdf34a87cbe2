#include "exec/partition.h"

#include "ir/model.h"

namespace graft {

std::vector<int> partition(const ir::Model& model, const ir::Graph& graph,
                           const std::vector<const ExecutionProvider*>& providers) {
  std::vector<int> owner(graph.nodes.size(), -1);
  for (size_t p = 0; p < providers.size(); ++p) {
    for (size_t i : providers[p]->capability(model, graph)) {
      if (i < owner.size() && owner[i] < 0) owner[i] = static_cast<int>(p);
    }
  }
  return owner;
}

}  // namespace graft
