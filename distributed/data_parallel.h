// Data-parallel training: the graph pass that makes a training step average its gradients
// across ranks. Each rank runs the same step on its own share of the batch; com.graft.AllReduce
// nodes (reduction "average") between backward and the optimizer update make every rank apply
// the same averaged gradients, so the parameters stay identical on all ranks.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "ir/api.h"
#include "ir/model.h"

namespace graft::distributed {

struct DataParallelOptions {
  // Gradients are all-reduced in buckets of about this many bytes: a bucket closes before a
  // gradient would take it past the limit (a larger gradient gets a bucket of its own).
  size_t bucket_bytes = size_t{25} << 20;
};

// What add_gradient_all_reduce inserted: one AllReduce node per bucket, each bucket's gradient
// names in the order backward computes them.
struct GradientBuckets {
  std::vector<std::vector<std::string>> buckets;
  std::vector<std::string> nodes;  // the AllReduce nodes' names, one per bucket
};

// Rewrites `step`, a training-step model (optim::add_optimizer over autodiff's gradient graph:
// gradient "<p>_grad" for each parameter p, read by the optimizer's update node), so that every
// reader of "<p>_grad" after backward (the update node, and so its global-norm clipping, and the
// graph outputs) sees the gradient averaged across ranks. The all-reduce reads the local
// gradient: the value an Identity naming "<p>_grad" copies (the Identity is dropped), or else
// the computing node's output, renamed "<p>_grad/local". Gradients are grouped into buckets in
// the order the nodes computing them run, and each bucket's com.graft.AllReduce (reduction
// "average", variadic: one output per input) is placed right after the last of them, so a
// sequential executor runs it while the rest of backward is still to come. Gradients no node
// computes (initializers, graph inputs) are equal on every rank and left alone. Throws
// InvalidArgument for a parameter without a gradient
// "<p>_grad" in the graph or with bucket_bytes == 0.
GRAFT_API GradientBuckets add_gradient_all_reduce(ir::Model& step,
                                                  const std::vector<std::string>& params,
                                                  const DataParallelOptions& options = {});

// ZeRO stage 1 (optimizer-state sharding): each rank updates, and keeps the optimizer state
// of, only the parameters it owns; the others' new values arrive by broadcast from their owners.
// The functions below build that step in three parts, every rank alike in collective order.

// The owning rank of each of `params` (an initializer of `model`): largest first, each to the
// least loaded rank so far (by bytes; ties to the lower rank), so the shares stay balanced.
// Throws InvalidArgument for world_size < 1 or a parameter that is not an initializer.
GRAFT_API std::vector<int> partition_parameters(const ir::Model& model,
                                                const std::vector<std::string>& params,
                                                int world_size);

// Global L2-norm clipping (torch.nn.utils.clip_grad_norm_: every gradient scaled by
// min(1, max_norm / (norm + 1e-6)), the norm over all of `params`' gradients) as standard ONNX
// nodes placed before the first node reading any "<p>_grad"; those nodes then read
// "<p>_grad/clipped" (graph outputs keep the unclipped gradients). For ZeRO, whose update node sees
// only its own parameters' gradients. Float gradients only; throws InvalidArgument otherwise or for
// max_norm <= 0.
GRAFT_API void add_gradient_clipping(ir::Model& step, const std::vector<std::string>& params,
                                     float max_norm);

// Completes a ZeRO-1 step whose update node (optim::add_optimizer over the parameters `rank`
// owns) writes "<p>.new" for those only: one com.graft.Broadcast per owning rank (root = that
// rank, in rank order) then gives every rank every "<p>.new" (an owner's update output is
// renamed "<p>.new/local"; a rank passes its current "<p>" for the parameters it does not own,
// which become graph inputs and outputs "<p>.new" here). `owners` is partition_parameters'.
GRAFT_API void add_parameter_broadcast(ir::Model& step, const std::vector<std::string>& params,
                                       const std::vector<int>& owners, int rank);

}  // namespace graft::distributed
