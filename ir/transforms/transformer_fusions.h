// Level-2 fusions of the transformer blocks PyTorch exports (both exporters): each pass is one
// file, checks every precondition of its pattern and leaves the graph unchanged where one fails.
// Each returns the number of patterns it replaced.
#pragma once

#include <cstdint>

#include "ir/model.h"

namespace graft::ir {

// 0.5 * x * (1 + erf(x / sqrt 2)) and 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))
// become one Gelu (approximate "tanh" for the second): ai.onnx Gelu when `onnx_opset` >= 20,
// else com.graft.Gelu.
int fuse_gelu(Graph& graph, int64_t onnx_opset);

// The ReduceMean / Sub / Pow / ReduceMean / Add / Sqrt / Div / Mul / Add decomposition over the
// last axis becomes LayerNormalization (com.graft.LayerNormalization when `onnx_opset` < 17).
int fuse_layer_norm(Graph& graph, int64_t onnx_opset);

// Add(a, b) -> LayerNormalization over the last axis becomes com.graft.SkipLayerNormalization,
// which also outputs the sum when something else reads it.
int fuse_skip_layer_norm(Graph& graph);

// Multi-head scaled dot-product attention (heads split by Reshape + Transpose, scores scaled,
// an additive mask, Softmax, the context product and its Transpose back) becomes
// com.graft.Attention over the [batch, sequence, heads, head size] projections.
int fuse_attention(Graph& graph);

}  // namespace graft::ir
