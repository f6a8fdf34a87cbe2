// The names that tie graft's graphs together: a gradient graph's outputs, an optimizer graph's
// inputs and outputs, the training state in checkpoints and graft's own operator domain. Every
// layer that writes or reads such a name takes it from here; Python gets the same values from
// graft._C.names.
#pragma once

namespace graft::names {

// graft's operators (fused gradients, optimizer updates, collectives, copies), version 1.
inline constexpr char kDomain[] = "com.graft";

// The gradient of value X is "X_grad".
inline constexpr char kGradSuffix[] = "_grad";
// A state tensor X (parameter, optimizer slot, running statistic, step) updated by a graph is
// output as "X.new".
inline constexpr char kNewSuffix[] = ".new";
// An optimizer graph takes the gradient of parameter p as the input "gradient/p".
inline constexpr char kGradientPrefix[] = "gradient/";
// The learning rate (float scalar) and the optimizer step count (int64 scalar) fed to an
// update; also the checkpoint properties that store them.
inline constexpr char kLearningRate[] = "graft.lr";
inline constexpr char kStep[] = "graft.step";

// Checkpoint properties graft writes beside the user's.
// The default random generator's state, so a resumed run draws what an uninterrupted one would.
inline constexpr char kRngProperty[] = "graft.rng";
// The optimizer-state tensors of a checkpoint, one name a line.
inline constexpr char kOptimizerStateProperty[] = "graft.optimizer_state";
// The number of data-parallel ranks that wrote a TrainingSession checkpoint.
inline constexpr char kWorldSizeProperty[] = "graft.world_size";

}  // namespace graft::names
