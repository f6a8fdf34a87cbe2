// Mixed-precision training as graph transforms (PyTorch's autocast and GradScaler, in ONNX):
// matrix products and convolutions compute in float16 or bfloat16 from float32 master weights,
// and a dynamic loss scale keeps float16 gradients from underflowing, a step whose update is not
// finite being skipped.
//
//   forward --autocast--> products in low precision, everything else float32
//           --scale_loss--> differentiate loss * "graft.loss_scale"
//   gradients --unscale_gradients--> "<p>_grad" divided by the scale again
//   step --guard_update--> every "<x>.new" is x itself unless all updated parameters are finite;
//                          "graft.update_finite" (bool) says which
//
// TrainingSession applies them (TrainingOptions::mixed_precision) and updates the scale between
// steps: halved after a skipped step, doubled after `growth_interval` finite steps in a row.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "exec/dtype.h"
#include "ir/model.h"

namespace graft::training {

// The loss scale fed to each step (float scalar) and the flag a guarded step outputs.
inline constexpr char kLossScale[] = "graft.loss_scale";
inline constexpr char kUpdateFinite[] = "graft.update_finite";

struct MixedPrecision {
  // Float16 or BFloat16 turns it on; Undefined leaves training in float32.
  DType compute = DType::Undefined;
  // Whether the loss is scaled. Unset: float16 is (its range is narrow), bfloat16 (float32's
  // range) is not. The rest are torch.amp.GradScaler's defaults.
  std::optional<bool> scaled;
  float init_scale = 65536.0f;
  float growth_factor = 2.0f;
  float backoff_factor = 0.5f;
  int growth_interval = 2000;
};

// The ops autocast computes in low precision: their float32 inputs are cast down and their
// outputs cast back to float32 (nodes with any non-float32 input are left alone).
const std::vector<std::string>& low_precision_ops();

// `forward` with every node of low_precision_ops() computing in `compute` (Float16 or
// BFloat16). A value read by several such nodes is cast once. Throws InvalidArgument for another
// dtype.
ir::Model autocast(const ir::Model& forward, DType compute);

// Adds the float scalar input kLossScale and returns the name of loss * scale, an output of
// `forward` to differentiate instead of the loss.
std::string scale_loss(ir::Model& forward, const std::string& loss);

// In a gradient model (outputs "<p>_grad" of the scaled loss), divides each parameter's gradient
// by kLossScale, so the outputs are the gradients of the loss itself.
void unscale_gradients(ir::Model& gradients, const std::vector<std::string>& params);

// In a training-step model: adds the output kUpdateFinite, true when every "<p>.new" of the
// parameters `params` is finite, and makes every "<x>.new" output x itself when it is false
// (the step, the parameters and the optimizer state stay as they were).
void guard_update(ir::Model& step, const std::vector<std::string>& params);

}  // namespace graft::training
