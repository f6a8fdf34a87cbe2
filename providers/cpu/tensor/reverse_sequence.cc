// ReverseSequence: reverses the first seq_len[b] steps of every batch entry along the time
// axis; later steps are copied unchanged.
#include <algorithm>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

class ReverseSequence final : public Kernel {
 public:
  explicit ReverseSequence(const KernelInfo& info)
      : batch_axis_(info.attr_int("batch_axis", 1)), time_axis_(info.attr_int("time_axis", 0)) {
    if (!((batch_axis_ == 0 && time_axis_ == 1) || (batch_axis_ == 1 && time_axis_ == 0))) {
      info.fail("batch_axis and time_axis must be 0 and 1 in some order");
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() < 2) ctx.fail("input must have rank >= 2");
    const std::vector<int64_t> lens = ctx.input(1).to_int_vector();
    const int64_t batch = x.dim(batch_axis_), time = x.dim(time_axis_);
    if (static_cast<int64_t>(lens.size()) != batch) {
      ctx.fail("sequence_lens has " + std::to_string(lens.size()) + " entries for a batch of " +
               std::to_string(batch));
    }
    for (int64_t len : lens) {
      if (len < 0 || len > time) {
        ctx.fail("sequence length " + std::to_string(len) + " is outside [0, " +
                 std::to_string(time) + "]");
      }
    }
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    const int64_t inner = tensor_ops::product(x.shape(), 2, x.shape().size());
    // Element offsets of one (batch, time) step.
    const int64_t batch_stride = batch_axis_ == 0 ? time * inner : inner;
    const int64_t time_stride = time_axis_ == 0 ? batch * inner : inner;
    tensor_ops::dispatch_copyable(x.dtype(), "ReverseSequence", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t len = lens[static_cast<size_t>(b)];
        for (int64_t t = 0; t < time; ++t) {
          const int64_t from = t < len ? len - 1 - t : t;
          const T* in = src + b * batch_stride + from * time_stride;
          std::copy(in, in + inner, dst + b * batch_stride + t * time_stride);
        }
      }
    });
  }

 private:
  int64_t batch_axis_;
  int64_t time_axis_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_reverse_sequence) {
  reg.add({"", "ReverseSequence", 10, 1 << 30, {}, 0, make<ReverseSequence>});
}

}  // namespace graft
