// Provider-independent graph rewrites, by level (the onnxruntime levels: 0 none, 1 basic,
// 2 extended, 99 all). Each pass is one file in this folder.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "ir/model.h"

namespace graft::ir {

// Computes a node's outputs from its inputs, all constants (`inputs` in the node's order,
// nullptr for an omitted one): one tensor per output the node writes (names are set by the
// caller), or an empty vector when it cannot (no kernel, a failure). ir executes nothing
// itself: the session supplies an evaluator built on its kernels (exec/constant_evaluator.h).
using ConstantEvaluator = std::function<std::vector<std::shared_ptr<onnx::TensorProto>>(
    const Node& node, const std::vector<const onnx::TensorProto*>& inputs)>;

// Level 1: Constant nodes become initializers; Shape and Size of statically shaped values
// become initializers; a deterministic ai.onnx node whose inputs are all constant is computed
// by `evaluate` (when given) and replaced by initializers, unless an output would be larger
// than max(its largest input, 1 MiB) or is a graph output.
int fold_constants(Graph& graph, const ConstantEvaluator& evaluate);
// Level 1: a node identical to an earlier one (domain, op, attributes, inputs) reads the earlier
// one's outputs instead; random ops, ops with nested graphs and non-ai.onnx ops are never merged.
int eliminate_common_subexpressions(Graph& graph);
// Level 1: nodes that do nothing are bypassed: Identity, inference-mode Dropout, Cast to the
// input's type, identity Transposes (a Transpose of a Transpose is composed into one), Reshape,
// Expand and Flatten to the input's own shape, a Reshape of a Reshape (or Flatten, Squeeze,
// Unsqueeze) reads the first one's input, Squeeze of an Unsqueeze (and back) on the same axes.
// A node that produces a graph output stays, so the output keeps its name.
int eliminate_noops(Graph& graph);
// Level 1: ai.onnx nodes none of whose outputs is read, and initializers no node reads (unless
// they are graph inputs).
int eliminate_dead_nodes(Graph& graph);

// Level 2: QDQ groups (DequantizeLinear -> Conv / MatMul / MaxPool / Add -> QuantizeLinear) become
// the integer op (QLinearConv, QLinearMatMul, MaxPool on the 8-bit data, com.graft.QLinearAdd);
// MatMulInteger -> Cast -> Mul [-> Add] and a Gemm of dequantized int8 weights become
// com.graft.MatMulIntegerToFloat: fuse_qdq.cc.
int fuse_qdq(Graph& graph);
// Level 2: fold an inference BatchNormalization into the Conv that feeds it.
int fold_conv_batchnorm(Graph& graph);
// Level 2: fold a Transpose of the last two axes into the MatMul reading it, and a 1-D bias Add
// into the MatMul feeding it (com.graft.FusedMatMul).
int fuse_matmul_transpose(Graph& graph);

// Level 1: a Sum of zero-Pads that tile one axis (the gradients of a tensor's slices) becomes a
// Concat of the unpadded pieces.
int pads_to_concat(Graph& graph);

// Level 1: Squeeze(Transpose(Unsqueeze(x))) becomes one Transpose (or none), and a Gather of one
// index from a Transpose gathers from the Transpose's input instead (then permutes what is left,
// if anything): slices are taken without transposing the whole tensor first.
int simplify_layout(Graph& graph);

// Runs every pass up to `level` on the main graph and nested graphs; `evaluate` (may be empty)
// computes the nodes constant folding replaces. Returns the number of rewrites made.
int optimize(Model& model, int level, const ConstantEvaluator& evaluate = nullptr);

}  // namespace graft::ir
