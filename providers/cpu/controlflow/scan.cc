// Scan (opset 9 and later): iterates a body over slices of its scan inputs, carrying state and
// stacking the per-iteration scan outputs.
#include <algorithm>

#include "exec/kernel.h"
#include "ir/model.h"
#include "providers/cpu/controlflow/stacking.h"

namespace graft {
namespace {

int64_t normalize_axis(int64_t axis, int64_t rank, const KernelContext& ctx) {
  if (axis < -rank || axis >= rank)
    ctx.fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

class Scan : public Kernel {
 public:
  explicit Scan(const KernelInfo& info) {
    const ir::Graph* body = info.attr_graph("body");
    if (!body) info.fail("has no body graph");
    num_scan_inputs_ = info.required_int("num_scan_inputs");
    num_state_ = info.num_inputs() - num_scan_inputs_;
    if (num_state_ < 0) info.fail("has fewer inputs than num_scan_inputs");
    num_scan_outputs_ = static_cast<int64_t>(body->outputs.size()) - num_state_;
    input_axes_ = info.attr_ints("scan_input_axes");
    input_directions_ = info.attr_ints("scan_input_directions");
    output_axes_ = info.attr_ints("scan_output_axes");
    output_directions_ = info.attr_ints("scan_output_directions");
    input_axes_.resize(static_cast<size_t>(num_scan_inputs_), 0);
    input_directions_.resize(static_cast<size_t>(num_scan_inputs_), 0);
    output_axes_.resize(static_cast<size_t>(num_scan_outputs_), 0);
    output_directions_.resize(static_cast<size_t>(num_scan_outputs_), 0);
  }

  void compute(KernelContext& ctx) override {
    std::vector<Value> state;
    for (int64_t i = 0; i < num_state_; ++i) state.push_back(ctx.input_value(static_cast<int>(i)));
    std::vector<Tensor> scan_in;
    std::vector<int64_t> axes;
    int64_t length = -1;
    for (int64_t k = 0; k < num_scan_inputs_; ++k) {
      const Tensor& t = ctx.input(static_cast<int>(num_state_ + k));
      int64_t axis = normalize_axis(input_axes_[static_cast<size_t>(k)], t.rank(), ctx);
      if (length >= 0 && t.dim(axis) != length)
        ctx.fail("scan inputs have different lengths along their scan axes");
      length = t.dim(axis);
      scan_in.push_back(t);
      axes.push_back(axis);
    }
    if (length < 0) length = 0;
    SubgraphRunner& body = ctx.subgraph("body");
    std::vector<std::vector<Tensor>> outs(static_cast<size_t>(num_scan_outputs_));
    for (int64_t it = 0; it < length; ++it) {
      std::vector<Value> in = state;
      for (int64_t k = 0; k < num_scan_inputs_; ++k) {
        int64_t idx = input_directions_[static_cast<size_t>(k)] ? length - 1 - it : it;
        in.push_back(
            slice_along(scan_in[static_cast<size_t>(k)], axes[static_cast<size_t>(k)], idx));
      }
      std::vector<Value> out = body.run(in);
      for (int64_t i = 0; i < num_state_; ++i)
        state[static_cast<size_t>(i)] = std::move(out[static_cast<size_t>(i)]);
      for (int64_t k = 0; k < num_scan_outputs_; ++k)
        outs[static_cast<size_t>(k)].push_back(out[static_cast<size_t>(num_state_ + k)].tensor());
    }
    for (int64_t i = 0; i < num_state_; ++i)
      ctx.set_output(static_cast<int>(i), state[static_cast<size_t>(i)]);
    for (int64_t k = 0; k < num_scan_outputs_; ++k) {
      auto& parts = outs[static_cast<size_t>(k)];
      if (parts.empty()) ctx.fail("scan over zero iterations leaves scan output shapes unknown");
      if (output_directions_[static_cast<size_t>(k)]) std::reverse(parts.begin(), parts.end());
      int64_t rank = parts[0].rank() + 1;
      int64_t axis = output_axes_[static_cast<size_t>(k)];
      if (axis < -rank || axis >= rank)
        ctx.fail("scan_output_axes value " + std::to_string(axis) + " is out of range");
      if (axis < 0) axis += rank;
      ctx.set_output(static_cast<int>(num_state_ + k), stack_along(parts, axis));
    }
  }

 private:
  int64_t num_scan_inputs_ = 0, num_state_ = 0, num_scan_outputs_ = 0;
  std::vector<int64_t> input_axes_, input_directions_, output_axes_, output_directions_;
};

// Scan-8: every input carries a leading batch axis and scan inputs scan along axis 1; an
// optional first input gives each batch entry's sequence length (shorter ones are zero-padded).
class Scan8 : public Kernel {
 public:
  explicit Scan8(const KernelInfo& info) {
    const ir::Graph* body = info.attr_graph("body");
    if (!body) info.fail("has no body graph");
    num_scan_inputs_ = info.required_int("num_scan_inputs");
    num_state_ = info.num_inputs() - 1 - num_scan_inputs_;
    if (num_state_ < 0) info.fail("has fewer inputs than num_scan_inputs + 1");
    num_scan_outputs_ = static_cast<int64_t>(body->outputs.size()) - num_state_;
    directions_ = info.attr_ints("directions");
    directions_.resize(static_cast<size_t>(num_scan_inputs_), 0);
  }

  void compute(KernelContext& ctx) override {
    const int first_scan = static_cast<int>(1 + num_state_);
    if (num_scan_inputs_ < 1) ctx.fail("needs at least one scan input");
    const Tensor& probe = ctx.input(first_scan);
    if (probe.rank() < 2) ctx.fail("scan inputs need [batch, sequence, ...] shapes");
    const int64_t batch = probe.dim(0), max_len = probe.dim(1);
    std::vector<int64_t> lens(static_cast<size_t>(batch), max_len);
    if (ctx.has_input(0)) {
      lens = ctx.input(0).to_int_vector();
      if (static_cast<int64_t>(lens.size()) != batch)
        ctx.fail("sequence_lens must have one entry per batch item");
      for (int64_t l : lens) {
        if (l < 1 || l > max_len)
          ctx.fail("sequence_lens entry " + std::to_string(l) + " is outside [1, " +
                   std::to_string(max_len) + "]");
      }
    }
    SubgraphRunner& body = ctx.subgraph("body");
    std::vector<std::vector<Tensor>> final_states(static_cast<size_t>(num_state_));
    std::vector<std::vector<Tensor>> scan_outs(static_cast<size_t>(num_scan_outputs_));
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<Value> state;
      for (int64_t i = 0; i < num_state_; ++i)
        state.push_back(slice_along(ctx.input(static_cast<int>(1 + i)), 0, b));
      std::vector<Tensor> inputs;
      for (int64_t k = 0; k < num_scan_inputs_; ++k)
        inputs.push_back(slice_along(ctx.input(first_scan + static_cast<int>(k)), 0, b));
      const int64_t len = lens[static_cast<size_t>(b)];
      std::vector<std::vector<Tensor>> steps(static_cast<size_t>(num_scan_outputs_));
      for (int64_t t = 0; t < len; ++t) {
        std::vector<Value> in = state;
        for (int64_t k = 0; k < num_scan_inputs_; ++k) {
          int64_t idx = directions_[static_cast<size_t>(k)] ? len - 1 - t : t;
          in.push_back(slice_along(inputs[static_cast<size_t>(k)], 0, idx));
        }
        std::vector<Value> out = body.run(in);
        for (int64_t i = 0; i < num_state_; ++i)
          state[static_cast<size_t>(i)] = out[static_cast<size_t>(i)];
        for (int64_t k = 0; k < num_scan_outputs_; ++k)
          steps[static_cast<size_t>(k)].push_back(
              out[static_cast<size_t>(num_state_ + k)].tensor());
      }
      for (int64_t i = 0; i < num_state_; ++i)
        final_states[static_cast<size_t>(i)].push_back(state[static_cast<size_t>(i)].tensor());
      for (int64_t k = 0; k < num_scan_outputs_; ++k) {
        auto& parts = steps[static_cast<size_t>(k)];
        // Zero-pad to the longest sequence so batch entries stack.
        while (static_cast<int64_t>(parts.size()) < max_len)
          parts.push_back(Tensor(parts[0].dtype(), parts[0].shape()));
        scan_outs[static_cast<size_t>(k)].push_back(stack_along(parts, 0));
      }
    }
    for (int64_t i = 0; i < num_state_; ++i)
      ctx.set_output(static_cast<int>(i), stack_along(final_states[static_cast<size_t>(i)], 0));
    for (int64_t k = 0; k < num_scan_outputs_; ++k) {
      ctx.set_output(static_cast<int>(num_state_ + k),
                     stack_along(scan_outs[static_cast<size_t>(k)], 0));
    }
  }

 private:
  int64_t num_scan_inputs_ = 0, num_state_ = 0, num_scan_outputs_ = 0;
  std::vector<int64_t> directions_;
};

}  // namespace

GRAFT_CPU_KERNELS(scan) {
  reg.add({"", "Scan", 8, 8, {}, 0, make<Scan8>});
  reg.add({"", "Scan", 9, 1 << 30, {}, 0, make<Scan>});
}

}  // namespace graft
