#include "exec/update_layout.h"

#include <string>

namespace graft {

UpdateLayout::UpdateLayout(const KernelInfo& info) {
  const int in = info.num_inputs(), out = info.num_outputs();
  n_ = in - 2 - out;
  if (n_ <= 0 || out % n_ != 0) {
    info.fail("expects lr, step, n parameters, their n gradients and n tensors per state slot (" +
              std::to_string(in) + " inputs), and the n new parameters and states (" +
              std::to_string(out) + " outputs): the counts do not fit");
  }
  slots_ = out / n_ - 1;
}

std::vector<std::pair<int, int>> UpdateLayout::in_place_pairs() const {
  std::vector<std::pair<int, int>> pairs;
  for (int o = 0; o < (1 + slots_) * n_; ++o) pairs.emplace_back(o, output_source(o));
  return pairs;
}

UpdateStep UpdateLayout::read_step(KernelContext& ctx) const {
  const Tensor lr = ctx.input(0).to_host();
  const Tensor step = ctx.input(1).to_host();
  if (lr.dtype() != DType::Float || lr.size() != 1) ctx.fail("lr must be a float scalar");
  if (step.dtype() != DType::Int64 || step.size() != 1) ctx.fail("step must be an int64 scalar");
  const int64_t s = step.data<int64_t>()[0];
  return {lr.data<float>()[0], s, static_cast<float>(s + 1)};
}

void UpdateLayout::check_inputs(KernelContext& ctx) const {
  for (int i = 0; i < n_; ++i) {
    const Tensor& x = ctx.input(2 + i);
    if (x.dtype() != DType::Float && x.dtype() != DType::Double) {
      ctx.fail("parameter " + std::to_string(i) + " is " + dtype_name(x.dtype()) +
               ", expected float or double");
    }
    for (int k = 1; k < 2 + slots_; ++k) {
      const Tensor& other = ctx.input(2 + k * n_ + i);
      if (other.dtype() != x.dtype() || other.shape() != x.shape()) {
        ctx.fail("input " + std::to_string(2 + k * n_ + i) + " is " + dtype_name(other.dtype()) +
                 " " + shape_to_string(other.shape()) + ", unlike parameter " + std::to_string(i) +
                 " (" + dtype_name(x.dtype()) + " " + shape_to_string(x.shape()) + ")");
      }
    }
  }
}

std::vector<void*> UpdateLayout::outputs(KernelContext& ctx, const std::vector<int>& reuse) const {
  std::vector<void*> out(static_cast<size_t>((1 + slots_) * n_));
  for (int o = 0; o < (1 + slots_) * n_; ++o) {
    const int j = output_source(o);
    const Tensor& source = ctx.input(j);
    if (static_cast<size_t>(o) < reuse.size() && reuse[static_cast<size_t>(o)] == j) {
      ctx.set_output(o, ctx.input_value(j));
      out[static_cast<size_t>(o)] = source.raw();
    } else {
      out[static_cast<size_t>(o)] = ctx.output(o, source.dtype(), source.shape()).raw();
    }
  }
  return out;
}

}  // namespace graft
