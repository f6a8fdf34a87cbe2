// The channels-last pass for int8 convolutions: oneDNN's int8 convolution kernels read and write
// [N, H, W, C], so chains of QLinearConv run in that layout as com.graft NhwcQLinearConv, with
// Transposes only where a chain meets the rest of the graph (onnxruntime's NhwcQLinearConv
// rewrite does the same).
//
// What runs channels-last, among the nodes `runs_nhwc` accepts:
//   QLinearConv with a 4-D int8 weight initializer whose zero points are zeros (absent or a
//     constant of zeros), and constant scales, zero points and bias, becomes NhwcQLinearConv;
//   com.graft QLinearAdd of two channels-last values stays as it is (it is elementwise);
//   a 2-D MaxPool (no Indices) of a channels-last value becomes com.graft NhwcMaxPool.
// A chain's input gets a Transpose to channels-last; a channels-last value read elsewhere or
// output by the graph gets a Transpose back, under its own name.
#pragma once

#include <functional>

#include "ir/model.h"

namespace graft::ir {

// Rewrites model.graph (not nested graphs) as above. `runs_nhwc` is asked once per node (its
// index in model.graph.nodes) before anything changes: whether its provider has
// NhwcQLinearConv. Returns the number of nodes that run channels-last.
int convert_int8_to_nhwc(Model& model, const std::function<bool(size_t node)>& runs_nhwc);

}  // namespace graft::ir
