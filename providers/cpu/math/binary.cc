// Binary elementwise ops with multidirectional broadcasting: arithmetic, Pow, Mod, bit shifts,
// bitwise and logical ops, comparisons and PRelu.
#include <cmath>
#include <string>
#include <type_traits>

#include "exec/kernel.h"
#include "exec/plan.h"
#include "providers/cpu/broadcast.h"
#include "providers/cpu/math/elementwise.h"

namespace graft {
namespace {

using elementwise::compute_t;
using elementwise::dispatch_family;
using elementwise::Family;
using elementwise::NoAttrs;
using elementwise::register_versions;

// Integer arithmetic in an unsigned type of at least 32 bits, so overflow wraps instead of
// being undefined (int16 * int16 promotes to int and may overflow it).
template <typename T>
using wrap_t = std::conditional_t<sizeof(T) < 4, uint32_t, std::make_unsigned_t<T>>;

#define GRAFT_ARITH_FN(Name, op)                                                       \
  struct Name : NoAttrs {                                                              \
    using NoAttrs::NoAttrs;                                                            \
    template <typename T>                                                              \
    T operator()(T a, T b) const {                                                     \
      if constexpr (std::is_integral_v<T>) {                                           \
        return static_cast<T>(static_cast<wrap_t<T>>(a) op static_cast<wrap_t<T>>(b)); \
      } else {                                                                         \
        return a op b;                                                                 \
      }                                                                                \
    }                                                                                  \
  };

GRAFT_ARITH_FN(AddFn, +)
GRAFT_ARITH_FN(SubFn, -)
GRAFT_ARITH_FN(MulFn, *)
#undef GRAFT_ARITH_FN

// Integer division truncates toward zero; dividing by zero gives 0 rather than a trap.
struct DivFn : NoAttrs {
  using NoAttrs::NoAttrs;
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      if (b == 0) return 0;
      if constexpr (std::is_signed_v<T>) {
        if (b == -1) return static_cast<T>(wrap_t<T>(0) - static_cast<wrap_t<T>>(a));
      }
    }
    return static_cast<T>(a / b);
  }
};

// fmod = 0: the sign of the divisor (Python's %, and floor-based for floats); fmod = 1: the
// sign of the dividend (C's fmod).
struct ModFn {
  bool fmod;
  explicit ModFn(const KernelInfo& info) : fmod(info.attr_int("fmod", 0) != 0) {
    const int64_t v = info.attr_int("fmod", 0);
    if (v != 0 && v != 1) info.fail("fmod must be 0 or 1, got " + std::to_string(v));
  }
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      if (b == 0) return 0;
      if constexpr (std::is_signed_v<T>) {
        if (b == -1) return 0;
      }
      T r = static_cast<T>(a % b);
      if constexpr (std::is_signed_v<T>) {
        if (!fmod && r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
      }
      return r;
    } else {
      T r = std::fmod(a, b);
      if (fmod) return r;
      if (r != 0) {
        if ((r < 0) != (b < 0)) r += b;
      } else {
        r = std::copysign(T(0), b);
      }
      return r;
    }
  }
};

// Shifts by a negative amount or by the type's width or more give the sign fill: -1 for a
// right shift of a negative value, else 0. Right shifts of signed values are arithmetic.
struct BitShiftFn {
  bool left;
  explicit BitShiftFn(const KernelInfo& info) {
    const std::string direction = info.attr_string("direction", "");
    if (direction != "LEFT" && direction != "RIGHT") {
      info.fail("direction must be LEFT or RIGHT, got '" + direction + "'");
    }
    left = direction == "LEFT";
  }
  template <typename T>
  T operator()(T a, T b) const {
    constexpr T bits = static_cast<T>(sizeof(T) * 8);
    bool out_of_range = b >= bits;
    if constexpr (std::is_signed_v<T>) out_of_range = out_of_range || b < 0;
    if (out_of_range) return static_cast<T>(!left && a < 0 ? -1 : 0);
    using U = std::make_unsigned_t<T>;
    if (left) return static_cast<T>(static_cast<wrap_t<T>>(static_cast<U>(a)) << b);
    return static_cast<T>(a >> b);
  }
};

#define GRAFT_BINARY_FN(Name, expr)                 \
  struct Name : NoAttrs {                           \
    using NoAttrs::NoAttrs;                         \
    template <typename T>                           \
    auto operator()(const T& a, const T& b) const { \
      return expr;                                  \
    }                                               \
  };

GRAFT_BINARY_FN(BitwiseAndFn, static_cast<T>(a& b))
GRAFT_BINARY_FN(BitwiseOrFn, static_cast<T>(a | b))
GRAFT_BINARY_FN(BitwiseXorFn, static_cast<T>(a ^ b))
GRAFT_BINARY_FN(AndFn, a&& b)
GRAFT_BINARY_FN(OrFn, a || b)
GRAFT_BINARY_FN(XorFn, a != b)
GRAFT_BINARY_FN(EqualFn, a == b)
GRAFT_BINARY_FN(LessFn, a < b)
GRAFT_BINARY_FN(GreaterFn, a > b)
GRAFT_BINARY_FN(LessOrEqualFn, a <= b)
GRAFT_BINARY_FN(GreaterOrEqualFn, a >= b)
GRAFT_BINARY_FN(PReluFn, static_cast<T>(a > T(0) ? a : static_cast<T>(a * b)))
#undef GRAFT_BINARY_FN

// Broadcasting of versions before 7: with attribute broadcast = 0 the shapes must match; with
// broadcast = 1, B broadcasts to A with its dims aligned at `axis` of A (at the end by default).
struct LegacyBroadcast {
  bool active = false;
  bool enabled = false;
  int64_t axis = -1;  // -1: align B's last dim with A's

  explicit LegacyBroadcast(const KernelInfo& info)
      : active(info.since_version() < 7 && info.op_type() != "PRelu"),
        enabled(info.attr_int("broadcast", 0) != 0),
        axis(info.attr_int("axis", -1)) {}

  // Reshapes `b` so that NumPy broadcasting applies the legacy rule; fails when it cannot.
  void apply(const KernelContext& ctx, const Tensor& a, Tensor& b) const {
    if (!active) return;
    if (!enabled) {
      if (a.shape() != b.shape()) {
        ctx.fail("shapes " + shape_to_string(a.shape()) + " and " + shape_to_string(b.shape()) +
                 " differ and attribute broadcast is 0");
      }
      return;
    }
    if (axis < 0) return;
    if (axis + b.rank() > a.rank()) {
      ctx.fail("B of shape " + shape_to_string(b.shape()) + " does not fit A of shape " +
               shape_to_string(a.shape()) + " at axis " + std::to_string(axis));
    }
    Shape shape = b.shape();
    shape.resize(static_cast<size_t>(a.rank() - axis), 1);
    b = b.reshaped(shape);
  }
};

// Output shape of `a` op `b`; PRelu also accepts a 1-D slope matching exactly one of X's
// dims, as the ONNX reference does.
Shape binary_shape(const KernelContext& ctx, const Tensor& a, Tensor& b, bool prelu) {
  if (prelu && b.rank() == 1) {
    try {
      return broadcast_shapes({a.shape(), b.shape()});
    } catch (const InvalidArgument&) {
      Shape slope(a.shape().size(), 1);
      int matches = 0;
      for (size_t d = 0; d < slope.size(); ++d) {
        if (a.shape()[d] == b.dim(0)) {
          slope[d] = b.dim(0);
          ++matches;
        }
      }
      if (matches == 1) {
        b = b.reshaped(slope);
        return a.shape();
      }
    }
  }
  return broadcast_shapes({a.shape(), b.shape()}, ctx.describe());
}

// y = Fn(a, b) with broadcasting; y is bool when `bool_out`, else a's dtype.
template <typename Fn, Family family, bool bool_out = false>
class BinaryKernel : public Kernel, public InPlaceKernel {
 public:
  explicit BinaryKernel(const KernelInfo& info)
      : fn_(info), legacy_(info), prelu_(info.op_type() == "PRelu") {}

  void compute(KernelContext& ctx) override { compute_in_place(ctx, {}); }

  // The output may overwrite an input of its shape (and type) that nothing reads afterwards.
  std::vector<std::pair<int, int>> in_place_pairs() const override {
    if constexpr (bool_out) return {};
    return {{0, 0}, {0, 1}};
  }

  void compute_in_place(KernelContext& ctx, const std::vector<int>& reuse) override {
    const Tensor& a = ctx.input(0);
    Tensor b = ctx.input(1);
    if (a.dtype() != b.dtype()) {
      ctx.fail(std::string("inputs have different dtypes: ") + dtype_name(a.dtype()) + " and " +
               dtype_name(b.dtype()));
    }
    legacy_.apply(ctx, a, b);
    const Shape shape = binary_shape(ctx, a, b, prelu_);
    // The planner offers an input that nothing reads later; it serves when it has the output's
    // shape (a broadcast input is smaller).
    Tensor reused;
    if (!bool_out && !reuse.empty() && reuse[0] >= 0 && ctx.input(reuse[0]).shape() == shape)
      reused = ctx.input(reuse[0]);
    if (reused.buffer()) ctx.set_output(0, Value(reused));
    Tensor& y = reused.buffer() ? reused : ctx.output(0, bool_out ? DType::Bool : a.dtype(), shape);
    auto run = [&](auto tag) {
      using T = typename decltype(tag)::type;
      using C = compute_t<T>;
      using TO = std::conditional_t<bool_out, bool, T>;
      broadcast_map<TO, T, T>(
          y,
          [this](const T& u, const T& v) {
            if constexpr (std::is_same_v<C, T>) {
              return fn_(u, v);
            } else {
              return fn_(static_cast<C>(u), static_cast<C>(v));
            }
          },
          a, b);
    };
    dispatch_family<family>(a.dtype(), ctx.describe().c_str(), run);
  }

 private:
  Fn fn_;
  LegacyBroadcast legacy_;
  bool prelu_;
};

// Pow: base T and exponent T1 may differ. Integer powers of integers are exact (wrapping);
// anything involving a float is computed in double and converted to T.
class PowKernel : public Kernel {
 public:
  explicit PowKernel(const KernelInfo& info) : legacy_(info) {}

  void compute(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    Tensor b = ctx.input(1);
    legacy_.apply(ctx, a, b);
    const Shape shape = broadcast_shapes({a.shape(), b.shape()}, ctx.describe());
    Tensor& y = ctx.output(0, a.dtype(), shape);
    const std::string what = ctx.describe();
    dispatch_number(a.dtype(), what.c_str(), [&](auto base_tag) {
      using T = typename decltype(base_tag)::type;
      dispatch_number(b.dtype(), what.c_str(), [&](auto exp_tag) {
        using E = typename decltype(exp_tag)::type;
        broadcast_map<T, T, E>(
            y, [](T x, E e) { return power<T, E>(x, e); }, a, b);
      });
    });
  }

 private:
  template <typename T, typename E>
  static T power(T x, E e) {
    if constexpr (std::is_integral_v<T> && std::is_integral_v<E>) {
      if constexpr (std::is_signed_v<E>) {
        if (e < 0) {
          if (x == 1) return 1;
          if constexpr (std::is_signed_v<T>) {
            if (x == -1) return (e % 2 == 0) ? 1 : -1;
          }
          return 0;
        }
      }
      wrap_t<T> result = 1, base = static_cast<wrap_t<T>>(x);
      for (auto n = static_cast<std::make_unsigned_t<E>>(e); n != 0; n >>= 1) {
        if (n & 1) result *= base;
        base *= base;
      }
      return static_cast<T>(result);
    } else {
      const double r = std::pow(static_cast<double>(static_cast<compute_t<T>>(x)),
                                static_cast<double>(static_cast<compute_t<E>>(e)));
      if constexpr (elementwise::is_half_v<T>) {
        return static_cast<T>(static_cast<float>(r));
      } else {
        return static_cast<T>(r);
      }
    }
  }

  LegacyBroadcast legacy_;
};

template <typename Fn, Family family, bool bool_out = false>
KernelFactory binary() {
  return make<BinaryKernel<Fn, family, bool_out>>;
}

}  // namespace

GRAFT_CPU_KERNELS(math_binary) {
  using elementwise::kBoolType;
  using elementwise::kIntegerTypes;
  register_versions(reg, "Add", {1, 6, 7, 13, 14}, kNumberTypes, binary<AddFn, Family::Number>());
  register_versions(reg, "Sub", {1, 6, 7, 13, 14}, kNumberTypes, binary<SubFn, Family::Number>());
  register_versions(reg, "Mul", {1, 6, 7, 13, 14}, kNumberTypes, binary<MulFn, Family::Number>());
  register_versions(reg, "Div", {1, 6, 7, 13, 14}, kNumberTypes, binary<DivFn, Family::Number>());
  register_versions(reg, "Mod", {10, 13, 28}, kNumberTypes, binary<ModFn, Family::Number>());
  register_versions(reg, "Pow", {1, 7, 12, 13, 15}, kNumberTypes, make<PowKernel>);
  register_versions(reg, "PRelu", {1, 6, 7, 9, 16}, kNumberTypes,
                    binary<PReluFn, Family::Number>());
  register_versions(reg, "BitShift", {11, 28}, kIntegerTypes,
                    binary<BitShiftFn, Family::Integer>());
  register_versions(reg, "BitwiseAnd", {18}, kIntegerTypes,
                    binary<BitwiseAndFn, Family::Integer>());
  register_versions(reg, "BitwiseOr", {18}, kIntegerTypes, binary<BitwiseOrFn, Family::Integer>());
  register_versions(reg, "BitwiseXor", {18}, kIntegerTypes,
                    binary<BitwiseXorFn, Family::Integer>());
  register_versions(reg, "And", {1, 7}, kBoolType, binary<AndFn, Family::Bool>());
  register_versions(reg, "Or", {1, 7}, kBoolType, binary<OrFn, Family::Bool>());
  register_versions(reg, "Xor", {1, 7}, kBoolType, binary<XorFn, Family::Bool>());
  register_versions(reg, "Equal", {1, 7, 11, 13, 19}, {}, binary<EqualFn, Family::Any, true>());
  register_versions(reg, "Less", {1, 7, 9, 13}, kNumberTypes,
                    binary<LessFn, Family::Number, true>());
  register_versions(reg, "Greater", {1, 7, 9, 13}, kNumberTypes,
                    binary<GreaterFn, Family::Number, true>());
  register_versions(reg, "LessOrEqual", {12, 16}, kNumberTypes,
                    binary<LessOrEqualFn, Family::Number, true>());
  register_versions(reg, "GreaterOrEqual", {12, 16}, kNumberTypes,
                    binary<GreaterOrEqualFn, Family::Number, true>());
}

}  // namespace graft
