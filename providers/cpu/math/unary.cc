// Unary math ops: Abs, Neg, Sign, rounding, exponentials, trigonometry, logical and bitwise
// Not, IsNaN and IsInf.
#include <cmath>
#include <type_traits>

#include "exec/kernel.h"
#include "providers/cpu/math/elementwise.h"

namespace graft {
namespace {

using elementwise::Family;
using elementwise::NoAttrs;
using elementwise::register_versions;
using elementwise::UnaryKernel;

// A functor without attributes: Name(x) = expr, x of compute type T.
#define GRAFT_UNARY_FN(Name, expr) \
  struct Name : NoAttrs {          \
    using NoAttrs::NoAttrs;        \
    template <typename T>          \
    T operator()(T x) const {      \
      return static_cast<T>(expr); \
    }                              \
  };

GRAFT_UNARY_FN(NegFn, -x)
GRAFT_UNARY_FN(ReciprocalFn, T(1) / x)
GRAFT_UNARY_FN(SqrtFn, std::sqrt(x))
GRAFT_UNARY_FN(ExpFn, std::exp(x))
GRAFT_UNARY_FN(LogFn, std::log(x))
GRAFT_UNARY_FN(ErfFn, std::erf(x))
GRAFT_UNARY_FN(FloorFn, std::floor(x))
GRAFT_UNARY_FN(CeilFn, std::ceil(x))
// nearbyint in the default rounding mode rounds halves to even, as ONNX's Round requires.
GRAFT_UNARY_FN(RoundFn, std::nearbyint(x))
GRAFT_UNARY_FN(SinFn, std::sin(x))
GRAFT_UNARY_FN(CosFn, std::cos(x))
GRAFT_UNARY_FN(TanFn, std::tan(x))
GRAFT_UNARY_FN(AsinFn, std::asin(x))
GRAFT_UNARY_FN(AcosFn, std::acos(x))
GRAFT_UNARY_FN(AtanFn, std::atan(x))
GRAFT_UNARY_FN(SinhFn, std::sinh(x))
GRAFT_UNARY_FN(CoshFn, std::cosh(x))
GRAFT_UNARY_FN(AsinhFn, std::asinh(x))
GRAFT_UNARY_FN(AcoshFn, std::acosh(x))
GRAFT_UNARY_FN(AtanhFn, std::atanh(x))
GRAFT_UNARY_FN(NotFn, !x)
GRAFT_UNARY_FN(BitwiseNotFn, ~x)

#undef GRAFT_UNARY_FN

// |x|; -0.0 gives +0.0, as NumPy's abs.
struct AbsFn : NoAttrs {
  using NoAttrs::NoAttrs;
  template <typename T>
  T operator()(T x) const {
    if constexpr (std::is_floating_point_v<T>) {
      return std::fabs(x);
    } else if constexpr (std::is_unsigned_v<T>) {
      return x;
    } else {
      return static_cast<T>(x < T(0) ? -x : x);
    }
  }
};

// -1, 0 or 1; NaN stays NaN.
struct SignFn : NoAttrs {
  using NoAttrs::NoAttrs;
  template <typename T>
  T operator()(T x) const {
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(x)) return x;
    }
    if constexpr (std::is_unsigned_v<T>) {
      return static_cast<T>(x > T(0));
    } else {
      return static_cast<T>((x > T(0)) - (x < T(0)));
    }
  }
};

// IsNaN and IsInf: a bool per element of a float, half or float8 tensor.
class FloatClassKernel : public Kernel {
 public:
  explicit FloatClassKernel(const KernelInfo& info)
      : is_inf_(info.op_type() == "IsInf"),
        positive_(info.attr_int("detect_positive", 1) != 0),
        negative_(info.attr_int("detect_negative", 1) != 0) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, DType::Bool, x.shape());
    auto test = [this](float v) {
      if (!is_inf_) return std::isnan(v);
      return std::isinf(v) && (v > 0 ? positive_ : negative_);
    };
    const DType dtype = x.dtype();
    if (dtype_is_float8(dtype) && !dtype_is_sub_byte(dtype)) {
      elementwise::map_unary<bool, uint8_t>(
          y, x, [&](uint8_t bits) { return test(small_float_to_float(dtype, bits)); });
      return;
    }
    dispatch_float(dtype, ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_same_v<T, double>) {
        elementwise::map_unary<bool, T>(y, x, [&](double v) {
          if (!is_inf_) return std::isnan(v);
          return std::isinf(v) && (v > 0 ? positive_ : negative_);
        });
      } else {
        elementwise::map_unary<bool, T>(y, x, [&](T v) { return test(static_cast<float>(v)); });
      }
    });
  }

 private:
  bool is_inf_;
  bool positive_;
  bool negative_;
};

const std::vector<DType> kFloatAndFloat8 = {
    DType::Float,        DType::Double,         DType::Float16,    DType::BFloat16,
    DType::Float8E4M3FN, DType::Float8E4M3FNUZ, DType::Float8E5M2, DType::Float8E5M2FNUZ};

template <typename Fn, Family family>
KernelFactory unary() {
  return make<UnaryKernel<Fn, family>>;
}

}  // namespace

GRAFT_CPU_KERNELS(math_unary) {
  using elementwise::kBoolType;
  using elementwise::kIntegerTypes;
  register_versions(reg, "Abs", {1, 6, 13}, kNumberTypes, unary<AbsFn, Family::Number>());
  register_versions(reg, "Neg", {1, 6, 13}, kSignedTypes, unary<NegFn, Family::Signed>());
  register_versions(reg, "Sign", {9, 13}, kNumberTypes, unary<SignFn, Family::Number>());
  register_versions(reg, "Reciprocal", {1, 6, 13}, kFloatTypes,
                    unary<ReciprocalFn, Family::Float>());
  register_versions(reg, "Sqrt", {1, 6, 13}, kFloatTypes, unary<SqrtFn, Family::Float>());
  register_versions(reg, "Exp", {1, 6, 13}, kFloatTypes, unary<ExpFn, Family::Float>());
  register_versions(reg, "Log", {1, 6, 13}, kFloatTypes, unary<LogFn, Family::Float>());
  register_versions(reg, "Erf", {9, 13}, kFloatTypes, unary<ErfFn, Family::Float>());
  register_versions(reg, "Floor", {1, 6, 13}, kFloatTypes, unary<FloorFn, Family::Float>());
  register_versions(reg, "Ceil", {1, 6, 13}, kFloatTypes, unary<CeilFn, Family::Float>());
  register_versions(reg, "Round", {11, 22}, kFloatTypes, unary<RoundFn, Family::Float>());
  register_versions(reg, "Sin", {7, 22}, kFloatTypes, unary<SinFn, Family::Float>());
  register_versions(reg, "Cos", {7, 22}, kFloatTypes, unary<CosFn, Family::Float>());
  register_versions(reg, "Tan", {7, 22}, kFloatTypes, unary<TanFn, Family::Float>());
  register_versions(reg, "Asin", {7, 22}, kFloatTypes, unary<AsinFn, Family::Float>());
  register_versions(reg, "Acos", {7, 22}, kFloatTypes, unary<AcosFn, Family::Float>());
  register_versions(reg, "Atan", {7, 22}, kFloatTypes, unary<AtanFn, Family::Float>());
  register_versions(reg, "Sinh", {9, 22}, kFloatTypes, unary<SinhFn, Family::Float>());
  register_versions(reg, "Cosh", {9, 22}, kFloatTypes, unary<CoshFn, Family::Float>());
  register_versions(reg, "Asinh", {9, 22}, kFloatTypes, unary<AsinhFn, Family::Float>());
  register_versions(reg, "Acosh", {9, 22}, kFloatTypes, unary<AcoshFn, Family::Float>());
  register_versions(reg, "Atanh", {9, 22}, kFloatTypes, unary<AtanhFn, Family::Float>());
  register_versions(reg, "Not", {1}, kBoolType, unary<NotFn, Family::Bool>());
  register_versions(reg, "BitwiseNot", {18}, kIntegerTypes, unary<BitwiseNotFn, Family::Integer>());
  register_versions(reg, "IsNaN", {9, 13, 20}, kFloatAndFloat8, make<FloatClassKernel>);
  register_versions(reg, "IsInf", {10, 20}, kFloatAndFloat8, make<FloatClassKernel>);
}

}  // namespace graft
