// Gradient graphs: a forward model becomes a model that also outputs gradients, made of ONNX
// nodes only, so any ONNX runtime can run it.
#pragma once

#include <string>
#include <vector>

#include "ir/api.h"
#include "ir/model.h"

namespace graft::autodiff {

// Returns a copy of `model` with one more output per name in `wrt`: the gradient of the output
// `loss` (summed over its elements when it is not a scalar) with respect to that value, named
// "<name>_grad". `wrt` names initializers or graph inputs; empty means every floating-point
// initializer. Models below ai.onnx opset 18 are converted to opset 18 first.
// Throws InvalidArgument for an unknown loss or wrt name, and NotImplemented naming the op and
// the path from the loss when a node on the way has no gradient rule.
GRAFT_API ir::Model build_gradient_graph(const ir::Model& model, const std::string& loss,
                                         const std::vector<std::string>& wrt = {});

// Whether the model uses ONNX's Gradient operator (ai.onnx.preview.training).
GRAFT_API bool has_gradient_ops(const ir::Model& model);
// The model with every Gradient node replaced by the gradient subgraph it stands for.
GRAFT_API ir::Model expand_gradient_ops(const ir::Model& model);

}  // namespace graft::autodiff
