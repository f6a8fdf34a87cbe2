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

// Makes the device boundaries real nodes, in the graph and its nested graphs: under the partition
// of `providers`, a com.graft MemcpyFromHost node goes before the first node on a device that
// reads a value in host memory (graph inputs, initializers, host nodes' outputs), and a
// MemcpyToHost node before the first host node, or nested graph, that reads a device value; a
// graph output made on a device is renamed "<name>@<provider>" there and copied back under its
// own name. Each copy is declared as a model-local function with an Identity body, so the model
// stays runnable anywhere. Returns the number of copies added: none when every provider works in
// host memory.
size_t insert_device_copies(ir::Model& model,
                            const std::vector<const ExecutionProvider*>& providers);

}  // namespace graft
