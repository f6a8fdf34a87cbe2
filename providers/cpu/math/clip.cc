// Clip: bounds from attributes (versions 1 and 6) or from optional scalar inputs (11 and later).
#include <limits>
#include <string>

#include "exec/kernel.h"
#include "providers/cpu/math/elementwise.h"

namespace graft {
namespace {

using elementwise::compute_t;

class ClipKernel : public Kernel {
 public:
  explicit ClipKernel(const KernelInfo& info)
      : bounds_from_inputs_(info.since_version() >= 11),
        min_(info.attr_float("min", std::numeric_limits<float>::lowest())),
        max_(info.attr_float("max", std::numeric_limits<float>::max())) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    elementwise::dispatch_family<elementwise::Family::Number>(
        x.dtype(), ctx.describe().c_str(), [&](auto tag) {
          using T = typename decltype(tag)::type;
          using C = compute_t<T>;
          C lo = std::numeric_limits<C>::lowest();
          C hi = std::numeric_limits<C>::max();
          if (bounds_from_inputs_) {
            if (ctx.has_input(1)) lo = bound<T>(ctx, 1, "min");
            if (ctx.has_input(2)) hi = bound<T>(ctx, 2, "max");
          } else {
            lo = static_cast<C>(min_);
            hi = static_cast<C>(max_);
          }
          elementwise::map_unary<T, T>(y, x, [lo, hi](T t) {
            C v = static_cast<C>(t);
            v = v < lo ? lo : v;
            return static_cast<T>(v > hi ? hi : v);
          });
        });
  }

 private:
  // The scalar bound in input `i`, of the same dtype as X.
  template <typename T>
  static compute_t<T> bound(const KernelContext& ctx, int i, const char* name) {
    const Tensor& t = ctx.input(i);
    if (t.dtype() != ctx.input(0).dtype()) {
      ctx.fail(std::string(name) + " has dtype " + dtype_name(t.dtype()) + ", input has " +
               dtype_name(ctx.input(0).dtype()));
    }
    if (t.size() != 1) {
      ctx.fail(std::string(name) + " must be a scalar, got shape " + shape_to_string(t.shape()));
    }
    return static_cast<compute_t<T>>(t.data<T>()[0]);
  }

  bool bounds_from_inputs_;
  float min_;
  float max_;
};

}  // namespace

GRAFT_CPU_KERNELS(math_clip) {
  elementwise::register_versions(reg, "Clip", {1, 6, 11, 12, 13}, kNumberTypes, make<ClipKernel>);
}

}  // namespace graft
