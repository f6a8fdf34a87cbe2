// Greedy partitioning, the onnxruntime model: providers in the user's preference order each
// claim, among the nodes still unassigned, those their capability() reports.
#pragma once

#include <vector>

#include "exec/provider.h"

namespace graft {

// The index into `providers` of the provider that runs each node of `graph`, or -1 where no
// provider claims the node.
std::vector<int> partition(const ir::Model& model, const ir::Graph& graph,
                           const std::vector<const ExecutionProvider*>& providers);

}  // namespace graft
