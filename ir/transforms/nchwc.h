// The channel-blocked layout pass, onnxruntime's NCHWc transformer: chains of 2-D float
// convolutions run on blocked tensors [N, ceil(C / b), H, W, b] (providers/cpu/nn/nchwc.h), with
// com.graft reorders only where a chain meets the rest of the graph.
//
// What runs blocked, among the nodes `runs_blocked` accepts:
//   Conv with 2 spatial dims, W a 4-D float initializer (B one if present), group 1 or depthwise
//     (one map per channel), becomes com.graft NchwcConv;
//   Relu, LeakyRelu, Sigmoid, HardSigmoid and Clip (constant bounds) of a blocked value, and Add
//     of two blocked values of one channel count, stay as they are: they are elementwise;
//   MaxPool (without Indices) with 2 spatial dims of a blocked value becomes com.graft
//     NhwcMaxPool, which pools each block of channels as a channels-last image; AveragePool with
//     2 spatial dims becomes its 3-D self with a window of 1 over the block.
// Folds, each into the NchwcConv (attributes `activation`, `sum_activation` and their params,
// input 3 `Sum`): the activation that alone reads a conv's output; then an Add that alone reads
// it, whose other operand is blocked; then the activation that alone reads the Add.
// A chain's input gets a ReorderInput (but a conv of at most kNchwcPlainChannels channels reads
// it plain); a blocked value read elsewhere or output by the graph gets a ReorderOutput under its
// own name.
#pragma once

#include <functional>

#include "ir/model.h"

namespace graft::ir {

// Channels up to which a chain's first convolution reads its plain input: padding them to a
// block would multiply its work, and oneDNN has kernels reading plain inputs of few channels.
inline constexpr int64_t kNchwcPlainChannels = 4;

// Rewrites model.graph (not nested graphs) as above. `runs_blocked` is asked once per node (its
// index in model.graph.nodes) before anything changes: whether it runs on a provider that has the
// blocked kernels. Returns the number of nodes that run blocked.
int convert_to_nchwc(Model& model, const std::function<bool(size_t node)>& runs_blocked);

}  // namespace graft::ir
