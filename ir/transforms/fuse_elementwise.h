// Fusion of elementwise chains for providers with a fused kernel (the CUDA provider's,
// providers/cuda/kernels/fused.h): a chain of single-use elementwise nodes whose values all have
// the output's shape (Add -> Relu, Mul -> Add -> Tanh, the five nodes of an exported Gelu)
// becomes one com.graft node that reads each input once and writes the output once.
//
// The fused node spells its program in attributes, which the kernel interprets per element:
//   ops       (strings) each step's ai.onnx op type, in order;
//   operands  (ints)    two per step: j >= 0 reads the node's input j, kFusedPrevious the previous
//                       step's result, kFusedNone marks a unary step's missing second operand;
//   alphas    (floats)  one per step: LeakyRelu's and Elu's alpha, Gelu's approximation (1 for
//                       tanh, 0 for erf), 0 otherwise.
// The model declares the node as a model-local function whose body is the original nodes, so any
// ONNX runtime runs it, and a graft session without the kernel inlines it. ONNX identifies a
// function by (domain, name) (onnx.reference ignores IR 10 overloads), so each distinct body is
// its own op type, fused_elementwise_op(k), and the kernel is registered under each of the
// kMaxFusedBodies names.
#pragma once

#include <functional>
#include <string>

#include "ir/model.h"

namespace graft::ir {

// What one fused node may hold: the kernel keeps its inputs' values in registers.
inline constexpr int kMaxFusedInputs = 8;
inline constexpr int kMaxFusedSteps = 16;
// Distinct fused bodies per model; chains past them stay unfused.
inline constexpr int kMaxFusedBodies = 64;
// Operand codes of the `operands` attribute.
inline constexpr int kFusedPrevious = -1;
inline constexpr int kFusedNone = -2;

// "FusedElementwise_<k>", of domain com.graft, version 1.
std::string fused_elementwise_op(int k);

// The number of inputs of ai.onnx op `op` as a fused step: 1 (Relu, Neg, Abs, Exp, Log, Sqrt,
// Tanh, Sigmoid, Erf, Reciprocal, Floor, Ceil, Sin, Cos, Softplus, LeakyRelu, Elu, Gelu), 2 (Add,
// Sub, Mul, Div, Pow, and Max and Min of two inputs), or 0 when it cannot be one.
int fused_step_arity(const std::string& op);

// Fuses the chains of model.graph (not nested graphs) whose nodes all satisfy `runs_fused`, asked
// once per node (by its index in model.graph.nodes) before anything changes: whether the node
// runs on a provider that has the fused kernel. A chain holds floating-point values whose types
// and shapes are known (shape inference fills them in when missing); its intermediate values are
// read by the next node only and are not graph outputs; the chain's first node may broadcast its
// inputs, and each later binary step one operand. Returns the number of fused nodes made.
int fuse_elementwise(Model& model, const std::function<bool(size_t node)>& runs_fused);

}  // namespace graft::ir
