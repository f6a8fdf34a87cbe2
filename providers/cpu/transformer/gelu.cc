// com.graft.Gelu: ai.onnx Gelu (approximate "none" or "tanh") for models whose opset predates
// 20, produced by ir/transforms/fuse_gelu. Float runs fast_math's branch-free Gelu, which
// vectorizes; other types use libm.
#include <cmath>
#include <numbers>

#include "exec/kernel.h"
#include "ir/names.h"
#include "providers/cpu/math/elementwise.h"
#include "providers/cpu/math/fast_math.h"

namespace graft {
namespace {

template <bool kTanhForm, typename T>
T gelu(T x) {
  using C = elementwise::compute_t<T>;
  const C v = static_cast<C>(x);
  if constexpr (std::is_same_v<C, float>) {
    if constexpr (kTanhForm) {
      const float k = 0.7978845608f;  // sqrt(2 / pi)
      return static_cast<T>(0.5f * v * (1.0f + fast_math::tanh(k * (v + 0.044715f * v * v * v))));
    }
    return static_cast<T>(fast_math::gelu(v));
  } else {
    if constexpr (kTanhForm) {
      const C k = std::sqrt(C(2) / std::numbers::pi_v<C>);
      return static_cast<T>(C(0.5) * v * (C(1) + std::tanh(k * (v + C(0.044715) * v * v * v))));
    }
    return static_cast<T>(C(0.5) * v * (C(1) + std::erf(v / std::numbers::sqrt2_v<C>)));
  }
}

class Gelu : public Kernel {
 public:
  explicit Gelu(const KernelInfo& info) {
    const std::string approximate = info.attr_string("approximate", "none");
    if (approximate != "none" && approximate != "tanh")
      info.fail("approximate must be 'none' or 'tanh', got '" + approximate + "'");
    tanh_form_ = approximate == "tanh";
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    dispatch_float(x.dtype(), "Gelu", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
      // One loop per form: a branch inside would keep the loop from vectorizing.
      elementwise::parallel_ranges(x.size(), [&](int64_t begin, int64_t end) {
        if (tanh_form_) {
          for (int64_t i = begin; i < end; ++i) dst[i] = gelu<true>(src[i]);
        } else {
          for (int64_t i = begin; i < end; ++i) dst[i] = gelu<false>(src[i]);
        }
      });
    });
  }

 private:
  bool tanh_form_ = false;
};

}  // namespace

GRAFT_CPU_KERNELS(transformer_gelu) {
  reg.add({names::kDomain, "Gelu", 1, 1 << 30, kFloatTypes, 0, make<Gelu>});
}

}  // namespace graft
