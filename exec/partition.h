// Greedy partitioning, the onnxruntime model: providers in the user's preference order each
// claim, among the nodes still unassigned, those their capability() reports; shape arithmetic a
// device claimed then moves back to the host.
#pragma once

#include <vector>

#include "exec/provider.h"

namespace graft {

// The index into `providers` of the provider that runs each node of `graph`, or -1 where no
// provider claims the node. Greedy first; then a node a device provider claimed whose outputs are
// all int32, int64 or bool (shape arithmetic) goes to the first host provider that claims it when
// everything it reads can be read on the host (values host nodes make, graph inputs, initializers
// of at most 100 elements, inputs its host kernel reads only the shape of) and it reads an integer
// value a host node made (a Shape's, a Size's) or feeds a device kernel's host input
// (KernelDef::host_inputs), directly or through other such nodes: a shape never goes to the device
// and back (onnxruntime's CPU-preferred nodes). The result depends on the graph alone, so a graph
// after insert_device_copies partitions as it did before.
std::vector<int> partition(const ir::Model& model, const ir::Graph& graph,
                           const std::vector<const ExecutionProvider*>& providers);

// Makes the device boundaries real nodes, in the graph and its nested graphs: under the partition
// of `providers`, a com.graft MemcpyFromHost node goes before the first node on a device that
// reads a value in host memory (graph inputs, initializers, host nodes' outputs), and a
// MemcpyToHost node before the first host node, nested graph or device kernel's host input
// (KernelDef::host_inputs) that reads a device value; an input a kernel reads only the shape of
// (KernelDef::metadata_inputs: Shape, Size) is read where it lives, without a copy. A graph output
// made on a device is renamed "<name>@<provider>" there and copied back under its own name. Each
// copy is declared as a model-local function with an Identity body, so the model stays runnable
// anywhere. Returns the number of copies added: none when every provider works in host memory.
size_t insert_device_copies(ir::Model& model,
                            const std::vector<const ExecutionProvider*>& providers);

}  // namespace graft
