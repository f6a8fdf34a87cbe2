// Provider-independent graph rewrites, by level (the onnxruntime levels: 0 none, 1 basic,
// 2 extended, 99 all). Each pass is one file in this folder.
#pragma once

#include "ir/model.h"

namespace graft::ir {

// Level 1: remove Identity nodes and inference-mode Dropout.
int eliminate_identity(Graph& graph);
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

// Runs every pass up to `level` on the main graph and nested graphs. Returns the number of
// rewrites made.
int optimize(Model& model, int level);

}  // namespace graft::ir
