// Elementwise activations: Relu and its variants, sigmoids, Tanh, Softplus, Softsign, Mish and
// Gelu. Each is a functor over the compute type, holding its attributes.
#include <cmath>
#include <numbers>
#include <type_traits>

#include "exec/kernel.h"
#include "providers/cpu/math/elementwise.h"
#include "providers/cpu/math/fast_math.h"

namespace graft {
namespace {

using elementwise::Family;
using elementwise::NoAttrs;
using elementwise::register_versions;
using elementwise::UnaryKernel;

// tanh in float through the vectorizable fast_math::tanh; double through libm.
template <typename T>
T tanh_of(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return fast_math::tanh(x);
  } else {
    return std::tanh(x);
  }
}

template <typename T>
T softplus(T x) {
  return x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

struct ReluFn : NoAttrs {
  using NoAttrs::NoAttrs;
  template <typename T>
  T operator()(T x) const {
    return x > T(0) ? x : T(0);
  }
};

struct SigmoidFn : NoAttrs {
  using NoAttrs::NoAttrs;
  template <typename T>
  T operator()(T x) const {
    return T(1) / (T(1) + std::exp(-x));  // exp(-x) = inf gives the limit 0
  }
};

struct TanhFn : NoAttrs {
  using NoAttrs::NoAttrs;
  template <typename T>
  T operator()(T x) const {
    return tanh_of(x);
  }
};

struct SoftplusFn : NoAttrs {
  using NoAttrs::NoAttrs;
  template <typename T>
  T operator()(T x) const {
    return softplus(x);
  }
};

struct SoftsignFn : NoAttrs {
  using NoAttrs::NoAttrs;
  template <typename T>
  T operator()(T x) const {
    return x / (T(1) + std::abs(x));
  }
};

struct HardSwishFn : NoAttrs {
  using NoAttrs::NoAttrs;
  template <typename T>
  T operator()(T x) const {
    return x * std::max(T(0), std::min(T(1), x / T(6) + T(0.5)));
  }
};

struct MishFn : NoAttrs {
  using NoAttrs::NoAttrs;
  template <typename T>
  T operator()(T x) const {
    return x * tanh_of(softplus(x));
  }
};

struct LeakyReluFn {
  float alpha;
  explicit LeakyReluFn(const KernelInfo& info) : alpha(info.attr_float("alpha", 0.01f)) {}
  template <typename T>
  T operator()(T x) const {
    return x < T(0) ? T(alpha) * x : x;
  }
};

struct ThresholdedReluFn {
  float alpha;
  explicit ThresholdedReluFn(const KernelInfo& info) : alpha(info.attr_float("alpha", 1.0f)) {}
  template <typename T>
  T operator()(T x) const {
    return x > T(alpha) ? x : T(0);
  }
};

struct HardSigmoidFn {
  float alpha;
  float beta;
  explicit HardSigmoidFn(const KernelInfo& info)
      : alpha(info.attr_float("alpha", 0.2f)), beta(info.attr_float("beta", 0.5f)) {}
  template <typename T>
  T operator()(T x) const {
    return std::max(T(0), std::min(T(1), T(alpha) * x + T(beta)));
  }
};

struct EluFn {
  float alpha;
  explicit EluFn(const KernelInfo& info) : alpha(info.attr_float("alpha", 1.0f)) {}
  template <typename T>
  T operator()(T x) const {
    return x < T(0) ? T(alpha) * std::expm1(x) : x;
  }
};

struct SeluFn {
  float alpha;
  float gamma;
  explicit SeluFn(const KernelInfo& info)
      : alpha(info.attr_float("alpha", 1.67326319217681884765625f)),
        gamma(info.attr_float("gamma", 1.05070102214813232421875f)) {}
  template <typename T>
  T operator()(T x) const {
    return x > T(0) ? T(gamma) * x : T(gamma) * (T(alpha) * std::exp(x) - T(alpha));
  }
};

struct CeluFn {
  float alpha;
  explicit CeluFn(const KernelInfo& info) : alpha(info.attr_float("alpha", 1.0f)) {
    if (alpha == 0.0f) info.fail("alpha must not be 0");
  }
  template <typename T>
  T operator()(T x) const {
    return std::max(T(0), x) + std::min(T(0), T(alpha) * std::expm1(x / T(alpha)));
  }
};

struct GeluFn {
  bool tanh_approx;
  explicit GeluFn(const KernelInfo& info) {
    const std::string approximate = info.attr_string("approximate", "none");
    if (approximate != "none" && approximate != "tanh") {
      info.fail("approximate must be 'none' or 'tanh', got '" + approximate + "'");
    }
    tanh_approx = approximate == "tanh";
  }
  template <typename T>
  T operator()(T x) const {
    if (tanh_approx) {
      const T k = std::sqrt(T(2) / std::numbers::pi_v<T>);
      return T(0.5) * x * (T(1) + tanh_of(k * (x + T(0.044715) * x * x * x)));
    }
    return T(0.5) * x * (T(1) + std::erf(x / std::numbers::sqrt2_v<T>));
  }
};

template <typename Fn>
KernelFactory float_unary() {
  return make<UnaryKernel<Fn, Family::Float>>;
}

}  // namespace

GRAFT_CPU_KERNELS(math_activation) {
  // Relu takes signed integers from version 14.
  register_versions(reg, "Relu", {1, 6, 13}, kFloatTypes, float_unary<ReluFn>());
  reg.add({"", "Relu", 14, 1 << 30, kSignedTypes, 0, make<UnaryKernel<ReluFn, Family::Signed>>});
  register_versions(reg, "LeakyRelu", {1, 6, 16}, kFloatTypes, float_unary<LeakyReluFn>());
  register_versions(reg, "ThresholdedRelu", {10, 22}, kFloatTypes,
                    float_unary<ThresholdedReluFn>());
  register_versions(reg, "Elu", {1, 6, 22}, kFloatTypes, float_unary<EluFn>());
  register_versions(reg, "Selu", {1, 6, 22}, kFloatTypes, float_unary<SeluFn>());
  register_versions(reg, "Celu", {12, 28}, kFloatTypes, float_unary<CeluFn>());
  register_versions(reg, "Sigmoid", {1, 6, 13}, kFloatTypes, float_unary<SigmoidFn>());
  register_versions(reg, "HardSigmoid", {1, 6, 22}, kFloatTypes, float_unary<HardSigmoidFn>());
  register_versions(reg, "Tanh", {1, 6, 13}, kFloatTypes, float_unary<TanhFn>());
  register_versions(reg, "Softplus", {1, 22}, kFloatTypes, float_unary<SoftplusFn>());
  register_versions(reg, "Softsign", {1, 22}, kFloatTypes, float_unary<SoftsignFn>());
  register_versions(reg, "HardSwish", {14, 22}, kFloatTypes, float_unary<HardSwishFn>());
  register_versions(reg, "Mish", {18, 22}, kFloatTypes, float_unary<MishFn>());
  register_versions(reg, "Gelu", {20}, kFloatTypes, float_unary<GeluFn>());
}

}  // namespace graft
