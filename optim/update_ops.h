// graft's fused optimizer updates, ops of domain com.graft version 1: SGDUpdate, AdamUpdate
// (Adam, and AdamW with decoupled = 1), AdagradUpdate, RMSpropUpdate and LAMBUpdate. One node
// updates any number of tensors, of any floating-point types:
//   inputs:  lr (float scalar), step (int64 scalar, the updates already applied), then the n
//            parameters X_i, their n gradients G_i and, per state slot of the op, the n state
//            tensors of that slot, each group in the same order;
//   outputs: the n new parameters, then the n new tensors of each slot, in the same order.
// Each new tensor has its input's dtype and shape, so a kernel may update in place. Every op
// takes max_grad_norm (> 0: scale all gradients by min(1, max_grad_norm / (||G||_2 + 1e-6)),
// the global norm as torch.nn.utils.clip_grad_norm_ computes it) and otherwise torch.optim's
// hyper-parameters as attributes.
//
// ONNX functions have fixed arity, so a saved model declares each op as a model-local function
// generated for the arity of the node that calls it; its body computes the same update with
// standard ops, reading the hyper-parameters through attribute references.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "autodiff/rule.h"
#include "optim/optimizer.h"

namespace onnx {
class FunctionProto;
}

namespace graft::optim {

struct UpdateOp {
  Kind kind = Kind::SGD;           // AdamW is Adam with decoupled_weight_decay = 1
  std::string op_type;             // "AdamUpdate"
  std::vector<std::string> slots;  // state slots in input order ("m", "v")
  std::vector<autodiff::Attr> attrs;
};

// The update op that performs `config`'s step, with its attributes. Slots follow from the
// config: a momentum buffer only with momentum, RMSprop's grad_avg only when centered.
UpdateOp update_op(const OptimizerConfig& config);

// The com.graft function declaring `op` for a node that updates `n` tensors; its body imports
// ai.onnx at `opset` (18 or later).
std::shared_ptr<onnx::FunctionProto> update_function(const UpdateOp& op, size_t n, int64_t opset);

}  // namespace graft::optim
