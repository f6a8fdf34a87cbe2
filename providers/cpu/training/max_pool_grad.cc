// com.graft.MaxPoolGrad: dX of a 2-D MaxPool from dY. Each window's maximum is found again in X
// (the first one on ties, as MaxPool reports it) and receives the window's dY; overlapping
// windows add up.
#include "exec/kernel.h"
#include "ir/names.h"
#include "providers/cpu/nn/conv_util.h"

namespace graft {
namespace {

class MaxPoolGrad : public Kernel {
 public:
  explicit MaxPoolGrad(const KernelInfo& info) : attrs_(info) {
    if (attrs_.kernel_shape.size() != 2) info.fail("needs a 2-D kernel_shape");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& dy = ctx.input(0);
    const Tensor& x = ctx.input(1);
    if (x.rank() != 4) ctx.fail("X " + shape_to_string(x.shape()) + " must have rank 4");
    if (dy.dtype() != x.dtype()) ctx.fail("dY and X must share a type");
    const Shape in = spatial_dims(x, ctx);
    const WindowGeometry g = attrs_.resolve(in, attrs_.kernel_shape, ctx);
    const Shape expected = {x.dim(0), x.dim(1), g.out[0], g.out[1]};
    if (dy.shape() != expected)
      ctx.fail("dY " + shape_to_string(dy.shape()) + " is not the pooled shape " +
               shape_to_string(expected));
    Tensor& dx = ctx.output(0, x.dtype(), x.shape());
    const int64_t planes = x.dim(0) * x.dim(1), ih = in[0], iw = in[1];
    const int64_t oh = g.out[0], ow = g.out[1];
    dispatch_float(x.dtype(), "MaxPoolGrad", [&](auto tag) {
      using T = typename decltype(tag)::type;
#pragma omp parallel for if (planes * ih * iw > (1 << 15))
      for (int64_t p = 0; p < planes; ++p) {
        const T* xp = x.data<T>() + p * ih * iw;
        const T* gp = dy.data<T>() + p * oh * ow;
        T* dp = dx.data<T>() + p * ih * iw;
        for (int64_t i = 0; i < ih * iw; ++i) dp[i] = T(0.0f);
        for (int64_t r = 0; r < oh; ++r) {
          const int64_t y0 = r * g.strides[0] - g.pads[0];
          const bool rows_inside = y0 >= 0 && y0 + (g.kernel[0] - 1) * g.dilations[0] < ih;
          for (int64_t c = 0; c < ow; ++c) {
            const int64_t x0 = c * g.strides[1] - g.pads[1];
            int64_t best_at = -1;
            T best = T();
            if (rows_inside && x0 >= 0 && x0 + (g.kernel[1] - 1) * g.dilations[1] < iw) {
              // The whole window lies inside X: no bounds to check, and a compare the compiler
              // can turn into selects (the first maximum wins, as in MaxPool).
              best_at = y0 * iw + x0;
              best = xp[best_at];
              for (int64_t kr = 0; kr < g.kernel[0]; ++kr) {
                const int64_t row = (y0 + kr * g.dilations[0]) * iw + x0;
                for (int64_t kc = 0; kc < g.kernel[1]; ++kc) {
                  const int64_t at = row + kc * g.dilations[1];
                  const bool greater = xp[at] > best;
                  best = greater ? xp[at] : best;
                  best_at = greater ? at : best_at;
                }
              }
              dp[best_at] = T(static_cast<float>(dp[best_at]) + static_cast<float>(gp[r * ow + c]));
              continue;
            }
            for (int64_t kr = 0; kr < g.kernel[0]; ++kr) {
              const int64_t y = y0 + kr * g.dilations[0];
              if (y < 0 || y >= ih) continue;
              for (int64_t kc = 0; kc < g.kernel[1]; ++kc) {
                const int64_t xc = x0 + kc * g.dilations[1];
                if (xc < 0 || xc >= iw) continue;
                const int64_t at = y * iw + xc;
                if (best_at < 0 || xp[at] > best) {
                  best = xp[at];
                  best_at = at;
                }
              }
            }
            if (best_at >= 0)
              dp[best_at] = T(static_cast<float>(dp[best_at]) + static_cast<float>(gp[r * ow + c]));
          }
        }
      }
    });
  }

 private:
  WindowAttrs attrs_;
};

}  // namespace

GRAFT_CPU_KERNELS(max_pool_grad) {
  reg.add({names::kDomain, "MaxPoolGrad", 1, 1 << 30, kFloatTypes, 0, make<MaxPoolGrad>});
}

}  // namespace graft
