// com.graft.BatchNormGrad: the gradients of training-mode BatchNormalization from dY alone. Per
// channel, over the batch and spatial axes, with the batch statistics recomputed from X:
//   dX = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)), g = dY * Scale,
//   dScale = sum(dY * x_hat), dB = sum(dY).
#include <cmath>
#include <type_traits>

#include "exec/kernel.h"
#include "exec/plan.h"
#include "ir/names.h"

namespace graft {
namespace {

// Sums of one plane in float lanes (vectorized), returned in double.
template <typename T>
double plane_sum(const T* v, int64_t n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += static_cast<float>(v[i]);
  return s;
}

// dX may overwrite dY: each element of dY is read once, just before its dX is written.
class BatchNormGrad : public Kernel, public InPlaceKernel {
 public:
  explicit BatchNormGrad(const KernelInfo& info)
      : axes_(info.attr_ints("axes")), epsilon_(info.attr_float("epsilon", 1e-5f)) {}

  std::vector<std::pair<int, int>> in_place_pairs() const override { return {{0, 0}}; }
  void compute(KernelContext& ctx) override { compute_in_place(ctx, {}); }

  void compute_in_place(KernelContext& ctx, const std::vector<int>& reuse) override {
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
    const double count = static_cast<double>(batch * spatial);
    if (count == 0) ctx.fail("X " + shape_to_string(x.shape()) + " has no elements per channel");
    Tensor dx;
    if (ctx.has_output(0)) {
      if (!reuse.empty() && reuse[0] == 0) {
        dx = dy;  // shares dY's buffer
        ctx.set_output(0, ctx.input_value(0));
      } else {
        dx = ctx.output(0, x.dtype(), x.shape());
      }
    }
    Tensor* dscale = ctx.has_output(1) ? &ctx.output(1, x.dtype(), scale.shape()) : nullptr;
    Tensor* db = ctx.has_output(2) ? &ctx.output(2, x.dtype(), scale.shape()) : nullptr;
    dispatch_float(x.dtype(), "BatchNormGrad", [&](auto tag) {
      using T = typename decltype(tag)::type;
      using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
      const T* xs = x.data<T>();
      const T* g = dy.data<T>();
      const T* sc = scale.data<T>();
      T* out = ctx.has_output(0) ? dx.data<T>() : nullptr;
#pragma omp parallel for if (x.size() > (1 << 15))
      for (int64_t c = 0; c < channels; ++c) {
        auto plane = [&](int64_t n) { return (n * channels + c) * spatial; };
        double sum = 0;
        for (int64_t n = 0; n < batch; ++n) sum += plane_sum(xs + plane(n), spatial);
        const double mean = sum / count;
        const Acc m = static_cast<Acc>(mean);
        // Centered sums keep the variance and the dY * x_hat sum accurate.
        double var = 0, dy_sum = 0, dy_centered = 0;
        for (int64_t n = 0; n < batch; ++n) {
          const T* xp = xs + plane(n);
          const T* gp = g + plane(n);
          Acc v = 0, d = 0, dc = 0;
#pragma omp simd reduction(+ : v, d, dc)
          for (int64_t i = 0; i < spatial; ++i) {
            const Acc centered = static_cast<Acc>(xp[i]) - m;
            const Acc gi = static_cast<Acc>(gp[i]);
            v += centered * centered;
            d += gi;
            dc += gi * centered;
          }
          var += v;
          dy_sum += d;
          dy_centered += dc;
        }
        const double inv_std = 1.0 / std::sqrt(var / count + static_cast<double>(epsilon_));
        const double dy_x_hat = dy_centered * inv_std;
        if (dscale) dscale->data<T>()[c] = static_cast<T>(dy_x_hat);
        if (db) db->data<T>()[c] = static_cast<T>(dy_sum);
        if (!out) continue;
        // dX = inv_std * s * (dy - mean(dy) - x_hat * mean(dy * x_hat)) = a * dy + b * x + k.
        const double a = inv_std * static_cast<double>(sc[c]);
        const double b = -a * (dy_x_hat / count) * inv_std;
        const double k = -a * (dy_sum / count) - b * mean;
        const Acc fa = static_cast<Acc>(a), fb = static_cast<Acc>(b), fk = static_cast<Acc>(k);
        for (int64_t n = 0; n < batch; ++n) {
          const T* xp = xs + plane(n);
          const T* gp = g + plane(n);
          T* op = out + plane(n);
#pragma omp simd
          for (int64_t i = 0; i < spatial; ++i)
            op[i] =
                static_cast<T>(fa * static_cast<Acc>(gp[i]) + fb * static_cast<Acc>(xp[i]) + fk);
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
  reg.add({names::kDomain, "BatchNormGrad", 1, 1 << 30, kFloatTypes, 0, make<BatchNormGrad>});
}

}  // namespace graft
