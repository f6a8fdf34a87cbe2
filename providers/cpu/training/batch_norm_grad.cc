// com.graft.BatchNormGrad: the gradients of training-mode BatchNormalization from dY alone. Per
// channel, over the batch and spatial axes, with the batch statistics recomputed from X:
//   dX = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)), g = dY * Scale,
//   dScale = sum(dY * x_hat), dB = sum(dY).
#include <cmath>

#include "exec/kernel.h"

namespace graft {
namespace {

class BatchNormGrad : public Kernel {
 public:
  explicit BatchNormGrad(const KernelInfo& info)
      : axes_(info.attr_ints("axes")), epsilon_(info.attr_float("epsilon", 1e-5f)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& dy = ctx.input(0);
    const Tensor& x = ctx.input(1);
    const Tensor& scale = ctx.input(2);
    if (dy.shape() != x.shape() || dy.dtype() != x.dtype() || scale.dtype() != x.dtype())
      ctx.fail("dY and X must share shape and type, and Scale X's type");
    const int64_t rank = x.rank();
    if (rank < 2) ctx.fail("X " + shape_to_string(x.shape()) + " needs a channel axis");
    // The reduction axes must be every axis but the channel axis 1.
    bool per_channel = static_cast<int64_t>(axes_.size()) == rank - 1;
    for (size_t k = 0; per_channel && k < axes_.size(); ++k) {
      const int64_t a = axes_[k] < 0 ? axes_[k] + rank : axes_[k];
      per_channel = a == (k == 0 ? 0 : static_cast<int64_t>(k) + 1);
    }
    if (!per_channel) ctx.fail("axes must be every axis but axis 1");
    const int64_t batch = x.dim(0), channels = x.dim(1);
    const int64_t spatial = channels == 0 ? 0 : x.size() / (batch * channels);
    if (scale.size() != channels)
      ctx.fail("Scale " + shape_to_string(scale.shape()) + " must have " +
               std::to_string(channels) + " elements");
    Tensor* dx = ctx.has_output(0) ? &ctx.output(0, x.dtype(), x.shape()) : nullptr;
    Tensor* dscale = ctx.has_output(1) ? &ctx.output(1, x.dtype(), scale.shape()) : nullptr;
    Tensor* db = ctx.has_output(2) ? &ctx.output(2, x.dtype(), scale.shape()) : nullptr;
    const double count = static_cast<double>(batch * spatial);
    if (count == 0) ctx.fail("X " + shape_to_string(x.shape()) + " has no elements per channel");
    dispatch_float(x.dtype(), "BatchNormGrad", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* xs = x.data<T>();
      const T* g = dy.data<T>();
      const T* sc = scale.data<T>();
#pragma omp parallel for if (x.size() > (1 << 15))
      for (int64_t c = 0; c < channels; ++c) {
        auto plane = [&](int64_t n) { return (n * channels + c) * spatial; };
        double sum = 0;
        for (int64_t n = 0; n < batch; ++n)
          for (int64_t i = 0, o = plane(n); i < spatial; ++i) sum += static_cast<double>(xs[o + i]);
        const double mean = sum / count;
        double var = 0;
        for (int64_t n = 0; n < batch; ++n) {
          for (int64_t i = 0, o = plane(n); i < spatial; ++i) {
            const double d = static_cast<double>(xs[o + i]) - mean;
            var += d * d;
          }
        }
        const double inv_std = 1.0 / std::sqrt(var / count + static_cast<double>(epsilon_));
        double dy_sum = 0, dy_x_hat = 0;
        for (int64_t n = 0; n < batch; ++n) {
          for (int64_t i = 0, o = plane(n); i < spatial; ++i) {
            const double d = static_cast<double>(g[o + i]);
            dy_sum += d;
            dy_x_hat += d * (static_cast<double>(xs[o + i]) - mean);
          }
        }
        dy_x_hat *= inv_std;
        if (dscale) dscale->data<T>()[c] = static_cast<T>(dy_x_hat);
        if (db) db->data<T>()[c] = static_cast<T>(dy_sum);
        if (!dx) continue;
        const double s = static_cast<double>(sc[c]);
        // dX = inv_std * s * (dy - mean(dy) - x_hat * mean(dy * x_hat)), as a * dy + b * x + k.
        const double g_mean = dy_sum / count, gx_mean = dy_x_hat / count;
        const double a = inv_std * s, b = -a * gx_mean * inv_std;
        const double k = -a * g_mean - b * mean;
        T* out = dx->data<T>();
        for (int64_t n = 0; n < batch; ++n) {
          for (int64_t i = 0, o = plane(n); i < spatial; ++i)
            out[o + i] = static_cast<T>(a * static_cast<double>(g[o + i]) +
                                        b * static_cast<double>(xs[o + i]) + k);
        }
      }
    });
  }

 private:
  std::vector<int64_t> axes_;
  float epsilon_;
};

}  // namespace

GRAFT_CPU_KERNELS(batch_norm_grad) {
  reg.add({"com.graft", "BatchNormGrad", 1, 1 << 30, kFloatTypes, 0, make<BatchNormGrad>});
}

}  // namespace graft
