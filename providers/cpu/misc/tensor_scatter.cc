// TensorScatter: writes `update` into a copy of `past_cache` along the sequence axis, starting
// at each batch entry's write index (wrapping around in circular mode). Models a KV-cache
// update.
#include <algorithm>
#include <string>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

class TensorScatter final : public Kernel {
 public:
  explicit TensorScatter(const KernelInfo& info) : axis_(info.attr_int("axis", -2)) {
    const std::string mode = info.attr_string("mode", "linear");
    if (mode != "linear" && mode != "circular") info.fail("unknown mode '" + mode + "'");
    circular_ = mode == "circular";
  }

  void compute(KernelContext& ctx) override {
    const Tensor& past = ctx.input(0);
    const Tensor& update = ctx.input(1);
    if (past.dtype() != update.dtype()) ctx.fail("past_cache and update differ in dtype");
    if (past.rank() < 2 || update.rank() != past.rank()) {
      ctx.fail("past_cache " + shape_to_string(past.shape()) + " and update " +
               shape_to_string(update.shape()) + " must have the same rank, at least 2");
    }
    const int64_t axis = tensor_ops::normalize_axis(ctx, axis_, past.rank());
    if (axis == 0) ctx.fail("axis must not be the batch axis");
    for (int64_t d = 0; d < past.rank(); ++d) {
      if (d == axis ? update.dim(d) > past.dim(d) : update.dim(d) != past.dim(d)) {
        ctx.fail("update " + shape_to_string(update.shape()) + " does not fit past_cache " +
                 shape_to_string(past.shape()) + " along axis " + std::to_string(axis));
      }
    }
    const int64_t batch = past.dim(0);
    const int64_t max_len = past.dim(axis), len = update.dim(axis);
    std::vector<int64_t> write(static_cast<size_t>(batch), 0);
    if (ctx.has_input(2)) {
      write = ctx.input(2).to_int_vector();
      if (static_cast<int64_t>(write.size()) != batch) {
        ctx.fail("write_indices must have one entry per batch");
      }
    }
    for (int64_t w : write) {
      if (w < 0 || (!circular_ && w + len > max_len)) {
        ctx.fail("write index " + std::to_string(w) + " with " + std::to_string(len) +
                 " updates does not fit a sequence of " + std::to_string(max_len));
      }
    }
    Tensor& y = ctx.output(0, past.dtype(), past.shape());
    const auto ax = static_cast<size_t>(axis);
    const int64_t per_batch = tensor_ops::product(past.shape(), 1, ax);
    const int64_t inner = tensor_ops::product(past.shape(), ax + 1, past.shape().size());
    tensor_ops::dispatch_copyable(past.dtype(), "TensorScatter", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = past.data<T>();
      const T* upd = update.data<T>();
      T* dst = y.data<T>();
      std::copy(src, src + past.size(), dst);
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t p = 0; p < per_batch; ++p) {
          const int64_t row = b * per_batch + p;
          for (int64_t s = 0; s < len; ++s) {
            int64_t at = write[static_cast<size_t>(b)] + s;
            if (circular_) at %= max_len;
            std::copy(upd + (row * len + s) * inner, upd + (row * len + s + 1) * inner,
                      dst + (row * max_len + at) * inner);
          }
        }
      }
    });
  }

 private:
  int64_t axis_;
  bool circular_ = false;
};

}  // namespace

GRAFT_CPU_KERNELS(misc_tensor_scatter) {
  reg.add({"", "TensorScatter", 24, 1 << 30, {}, 0, make<TensorScatter>});
}

}  // namespace graft
