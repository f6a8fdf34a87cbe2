// com.graft.LayerNormGrad: dX = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)) with
// g = dY * Scale, over the trailing `axes` (LayerNormalization's), and, when asked for, dScale =
// sum(dY * x_hat) and dB = sum(dY) over the rows. Statistics are recomputed from X in two passes
// per row; the op's function body is the same formula in standard ops.
#include <cmath>
#include <type_traits>
#include <vector>

#include "exec/kernel.h"
#include "exec/reduce_shapes.h"
#include "ir/names.h"

namespace graft {
namespace {

class LayerNormGrad : public Kernel {
 public:
  explicit LayerNormGrad(const KernelInfo& info)
      : axes_(info.attr_ints("axes")), epsilon_(info.attr_float("epsilon", 1e-5f)) {
    if (axes_.empty()) info.fail("needs the normalized axes");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& dy = ctx.input(0);
    const Tensor& x = ctx.input(1);
    const Tensor& scale = ctx.input(2);
    if (dy.shape() != x.shape() || dy.dtype() != x.dtype() || scale.dtype() != x.dtype()) {
      ctx.fail("dY, X and Scale must share X's shape and type");
    }
    const int64_t first = trailing_axes_start(axes_, x.rank());
    if (first < 0) ctx.fail("axes must be the trailing axes of X, in increasing order");
    const AxisSplit split = split_at_axis(x.shape(), first, true);
    const int64_t outer = split.outer, n = split.n;
    if (scale.size() != n && scale.size() != 1) {
      ctx.fail("Scale " + shape_to_string(scale.shape()) + " does not cover the normalized axes");
    }
    // dScale and dB are summed over the rows; each thread keeps its own partial sums.
    const bool param_grads = ctx.has_output(1) || ctx.has_output(2);
    if (param_grads && scale.size() != n)
      ctx.fail("dScale and dB need Scale " + shape_to_string(scale.shape()) +
               " to cover the normalized axes element by element");
    Tensor dx = ctx.has_output(0) ? ctx.output(0, x.dtype(), x.shape()) : Tensor();
    Tensor* dscale = ctx.has_output(1) ? &ctx.output(1, x.dtype(), scale.shape()) : nullptr;
    Tensor* dbias = ctx.has_output(2) ? &ctx.output(2, x.dtype(), scale.shape()) : nullptr;
    dispatch_float(x.dtype(), "LayerNormGrad", [&](auto tag) {
      using T = typename decltype(tag)::type;
      using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
      const T* g_in = dy.data<T>();
      const T* xs = x.data<T>();
      const T* sc = scale.data<T>();
      T* out = ctx.has_output(0) ? dx.data<T>() : nullptr;
      const bool scalar_scale = scale.size() == 1;
      const Acc inv_n = Acc(1) / static_cast<Acc>(n);
      std::vector<double> totals(param_grads ? static_cast<size_t>(2 * n) : 0, 0.0);
#pragma omp parallel if (outer * n > (1 << 15))
      {
        std::vector<Acc> partial(param_grads ? static_cast<size_t>(2 * n) : 0, Acc(0));
#pragma omp for
        for (int64_t o = 0; o < outer; ++o) {
          const T* xr = xs + o * n;
          const T* gr = g_in + o * n;
          Acc mean = 0, var = 0;
#pragma omp simd reduction(+ : mean)
          for (int64_t j = 0; j < n; ++j) mean += static_cast<Acc>(xr[j]);
          mean *= inv_n;
#pragma omp simd reduction(+ : var)
          for (int64_t j = 0; j < n; ++j) {
            const Acc d = static_cast<Acc>(xr[j]) - mean;
            var += d * d;
          }
          const Acc inv_std = Acc(1) / std::sqrt(var * inv_n + static_cast<Acc>(epsilon_));
          if (param_grads) {
            Acc* ds = partial.data();
            Acc* db = partial.data() + n;
#pragma omp simd
            for (int64_t j = 0; j < n; ++j) {
              const Acc gy = static_cast<Acc>(gr[j]);
              ds[j] += gy * (static_cast<Acc>(xr[j]) - mean) * inv_std;
              db[j] += gy;
            }
          }
          if (!out) continue;
          Acc g_sum = 0, gx_sum = 0;
#pragma omp simd reduction(+ : g_sum, gx_sum)
          for (int64_t j = 0; j < n; ++j) {
            const Acc g = static_cast<Acc>(gr[j]) * static_cast<Acc>(sc[scalar_scale ? 0 : j]);
            g_sum += g;
            gx_sum += g * (static_cast<Acc>(xr[j]) - mean) * inv_std;
          }
          const Acc g_mean = g_sum * inv_n, gx_mean = gx_sum * inv_n;
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) {
            const Acc g = static_cast<Acc>(gr[j]) * static_cast<Acc>(sc[scalar_scale ? 0 : j]);
            const Acc x_hat = (static_cast<Acc>(xr[j]) - mean) * inv_std;
            out[o * n + j] = static_cast<T>(inv_std * (g - g_mean - x_hat * gx_mean));
          }
        }
        if (param_grads) {
#pragma omp critical
          for (size_t j = 0; j < totals.size(); ++j) totals[j] += static_cast<double>(partial[j]);
        }
      }
      for (int64_t j = 0; param_grads && j < n; ++j) {
        if (dscale) dscale->data<T>()[j] = static_cast<T>(totals[static_cast<size_t>(j)]);
        if (dbias) dbias->data<T>()[j] = static_cast<T>(totals[static_cast<size_t>(n + j)]);
      }
    });
  }

 private:
  std::vector<int64_t> axes_;
  float epsilon_;
};

}  // namespace

GRAFT_CPU_KERNELS(layer_norm_grad) {
  reg.add({names::kDomain, "LayerNormGrad", 1, 1 << 30, kFloatTypes, 0, make<LayerNormGrad>});
}

}  // namespace graft
