// The inputs and outputs of graft's fused optimizer updates (com.graft SGDUpdate, AdamUpdate,
// AdagradUpdate, RMSpropUpdate, LAMBUpdate; optim/update_ops.h defines the ops): inputs lr (float
// scalar), step (int64 scalar, steps already taken), n parameters, their n gradients and n tensors
// per state slot; outputs the n new parameters, then the n new tensors of each slot. Every
// provider's update kernel reads its node through it.
#pragma once

#include <utility>
#include <vector>

#include "exec/kernel.h"

namespace graft {

// The learning rate, the steps taken before this one, and t = step + 1 (bias corrections).
struct UpdateStep {
  float lr;
  int64_t step;
  float t;
};

class UpdateLayout {
 public:
  // Fails naming the node when its input and output counts fit no n.
  explicit UpdateLayout(const KernelInfo& info);

  int tensors() const { return n_; }  // n
  int slots() const { return slots_; }
  // Output o may be written into the buffer of input output_source(o): each new tensor into its
  // old one (the pairs InPlaceKernel::in_place_pairs lists).
  int output_source(int o) const { return o < n_ ? 2 + o : 2 + n_ + o; }
  std::vector<std::pair<int, int>> in_place_pairs() const;

  // lr and step, read on the host (a device kernel lists them as host inputs).
  UpdateStep read_step(KernelContext& ctx) const;
  // Every parameter float or double, its gradient and slots of its dtype and shape; checked
  // before anything is written.
  void check_inputs(KernelContext& ctx) const;
  // The outputs' memory: an input's own buffer where `reuse` (InPlaceKernel::compute_in_place's)
  // allows it, else a new output.
  std::vector<void*> outputs(KernelContext& ctx, const std::vector<int>& reuse) const;

 private:
  int n_ = 0;
  int slots_ = 0;
};

}  // namespace graft
