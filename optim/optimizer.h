// Optimizer steps as ONNX nodes: turns a gradient model into a training-step model whose outputs
// are the updated parameters and optimizer state, computed by one fused com.graft update node
// (optim/update_ops.h).
#pragma once

#include <string>
#include <vector>

#include "ir/api.h"
#include "ir/model.h"

namespace graft::optim {

enum class Kind { SGD, Adam, AdamW, Adagrad, RMSprop, LAMB };

// "sgd", "adam", "adamw", "adagrad", "rmsprop", "lamb" (torch.optim's class names, lower case),
// as state names ("<p>.adamw.m"), the Python API and the command line spell them.
GRAFT_API const char* kind_name(Kind kind);
// The inverse; throws InvalidArgument naming `name` and the known ones.
GRAFT_API Kind parse_kind(const std::string& name);

// torch.optim's hyper-parameters, with its defaults.
struct OptimizerConfig {
  Kind kind = Kind::AdamW;
  float momentum = 0.0f;      // SGD, RMSprop
  float dampening = 0.0f;     // SGD
  bool nesterov = false;      // SGD
  float weight_decay = 0.0f;  // L2 for SGD and Adam, decoupled for AdamW (default 0.01 there)
  float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f;  // Adam, AdamW (epsilon: all but SGD)
  float lr_decay = 0.0f;                                // Adagrad
  float alpha = 0.99f;                                  // RMSprop smoothing
  bool centered = false;                                // RMSprop
  float max_grad_norm = 0.0f;  // > 0: clip the global L2 norm of all gradients first
};

// Adds one optimizer step to `gradient_model` (built by autodiff::build_gradient_graph, so it
// outputs "<p>_grad" for each parameter p). The result:
//  - takes as inputs, besides the forward inputs: the learning rate "graft.lr" (float scalar),
//    the step counter "graft.step" (int64 scalar, steps already taken), every parameter (its
//    initializer is the default value) and each state tensor "<p>.<optimizer>.<slot>"
//    (zeros by default);
//  - outputs "<p>.new", "<state>.new" and "graft.step.new" after the forward outputs.
// One node of domain com.graft updates every parameter (SGDUpdate, AdamUpdate, ...), with
// torch.optim's formulas; the model declares it as a function whose body is standard ONNX ops,
// so any ONNX runtime can run the step. Throws InvalidArgument for a parameter that is not a
// float or double initializer or has no gradient output.
GRAFT_API ir::Model add_optimizer(const ir::Model& gradient_model,
                                  const std::vector<std::string>& params,
                                  const OptimizerConfig& config);

// The gradient model of an optimizer that runs apart from backward: inputs "gradient/<p>" (each
// with parameter p's type and shape) passed through as outputs "<p>_grad", with the parameters'
// initializers of `forward` and its opset (at least 18). add_optimizer turns it into the update
// alone, as generate_artifacts' optimizer model and TrainingSession's optimizer_step run it.
// Throws InvalidArgument for a parameter that is not an initializer of `forward`.
GRAFT_API ir::Model gradients_as_inputs(const ir::Model& forward,
                                        const std::vector<std::string>& params);

}  // namespace graft::optim
