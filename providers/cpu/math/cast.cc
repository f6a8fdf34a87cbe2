// Cast and CastLike between every ONNX element type graft holds: numbers, bool, string, the
// half types, the float8 family, float4e2m1 and the 4- and 2-bit integers.
//
// Numbers convert directly, type pair by type pair. The byte-sized formats go through a
// wider type: small floats decode to float and encode from float (exec/dtype.h), small
// integers widen to int8/uint8 and narrow from int64 by wrapping (floats rounded half to even
// first). Strings go through double (parsing) or through each number's shortest round-trip
// digits (formatting).
#include <bit>
#include <cctype>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "exec/kernel.h"
#include "providers/cpu/math/cast_string.h"
#include "providers/cpu/math/elementwise.h"

namespace graft {
namespace {

using elementwise::compute_t;
using elementwise::is_half_v;
using elementwise::parallel_ranges;

bool is_small_float(DType d) { return dtype_is_float8(d); }  // float8 family and float4e2m1
bool is_small_int(DType d) {
  return d == DType::Int4 || d == DType::UInt4 || d == DType::Int2 || d == DType::UInt2;
}
int small_int_bits(DType d) { return d == DType::Int4 || d == DType::UInt4 ? 4 : 2; }
bool is_direct(DType d) { return d == DType::Bool || dtype_is_float(d) || dtype_is_integer(d); }

// Float to integer: truncation toward zero; NaN and values beyond int64 give INT64_MIN's low
// bits, as x86 conversions (and so NumPy) do.
template <typename To>
To float_to_int(double v) {
  constexpr double kTwo63 = 9223372036854775808.0;
  if constexpr (std::is_same_v<To, uint64_t>) {
    if (v >= kTwo63 && v < 2 * kTwo63) return static_cast<uint64_t>(v);
  }
  if (!(v >= -kTwo63 && v < kTwo63)) return static_cast<To>(std::numeric_limits<int64_t>::min());
  return static_cast<To>(static_cast<int64_t>(v));
}

template <typename To, typename From>
To convert(From v) {
  using C = compute_t<From>;
  const C c = static_cast<C>(v);
  if constexpr (std::is_same_v<To, bool>) {
    return c != C(0);
  } else if constexpr (is_half_v<To>) {
    return To(static_cast<float>(c));
  } else if constexpr (std::is_floating_point_v<To>) {
    return static_cast<To>(c);
  } else if constexpr (std::is_floating_point_v<C>) {
    return float_to_int<To>(static_cast<double>(c));
  } else {
    return static_cast<To>(c);  // integers wrap modulo 2^bits
  }
}

// FLOAT8E8M0 from float, as the ONNX reference computes it on the float's exponent field.
uint8_t to_e8m0(float value, bool saturate, const std::string& round_mode) {
  const auto bits = std::bit_cast<uint32_t>(value);
  uint32_t exponent = (bits >> 23) & 0xff;
  if (exponent == 0xff) return 0xff;
  bool round_up = false;
  if (round_mode == "up") {
    round_up = (bits & 0x7fffff) != 0;
  } else if (round_mode == "nearest") {
    const bool guard = bits & 0x400000, round = bits & 0x200000, sticky = bits & 0x1fffff;
    round_up = guard && (round || sticky || exponent > 0);
  }
  if (round_up && !(saturate && exponent == 0xfe)) ++exponent;
  return static_cast<uint8_t>(exponent);
}

class CastKernel : public Kernel {
 public:
  explicit CastKernel(const KernelInfo& info)
      : like_(info.op_type() == "CastLike"),
        saturate_(info.attr_int("saturate", 1) != 0),
        round_mode_(info.attr_string("round_mode", "up")) {
    if (!like_ && info.since_version() < 6) {
      // Version 1 names the type: "FLOAT", "INT64", ...
      const std::string name = info.attr_string("to", "");
      for (int code = 1; code <= static_cast<int>(DType::Int2); ++code) {
        std::string upper = dtype_name(static_cast<DType>(code));
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (upper == name) to_ = static_cast<DType>(code);
      }
      if (to_ == DType::Undefined) info.fail("unknown type '" + name + "' in attribute to");
    } else if (!like_) {
      to_ = static_cast<DType>(info.required_int("to"));
    }
    if (round_mode_ != "up" && round_mode_ != "down" && round_mode_ != "nearest") {
      info.fail("round_mode must be 'up', 'down' or 'nearest', got '" + round_mode_ + "'");
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const DType to = like_ ? ctx.input(1).dtype() : to_;
    Tensor& y = ctx.output(0, to, x.shape());
    cast(ctx, x, y);
  }

 private:
  // Fills `y` (allocated, of its own dtype) from `x`.
  void cast(const KernelContext& ctx, const Tensor& x, Tensor& y) const {
    const DType from = x.dtype(), to = y.dtype();
    const std::string what = ctx.describe();
    if (from == to) {
      dispatch_by_size(from, what.c_str(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        std::copy_n(x.data<T>(), x.size(), y.data<T>());
      });
    } else if (from == DType::String) {
      // Integers parse exactly through int64; everything else through double.
      const bool integral = dtype_is_integer(to) || is_small_int(to) || to == DType::Bool;
      Tensor wide(integral ? DType::Int64 : DType::Double, x.shape());
      const auto* src = x.data<std::string>();
      for (int64_t i = 0; i < x.size(); ++i) {
        if (integral) {
          wide.data<int64_t>()[i] = parse_int_string(ctx, src[i]);
        } else {
          wide.data<double>()[i] = parse_float_string(ctx, src[i]);
        }
      }
      cast(ctx, wide, y);
    } else if (to == DType::String) {
      if (!is_direct(from)) return cast(ctx, widen(ctx, x), y);
      auto* dst = y.data<std::string>();
      dispatch_numeric(from, what.c_str(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        const T* src = x.data<T>();
        for (int64_t i = 0; i < x.size(); ++i) dst[i] = format_number(src[i]);
      });
    } else if (!is_direct(from)) {
      cast(ctx, widen(ctx, x), y);
    } else if (is_small_float(to)) {
      if (from != DType::Float && from != DType::Double && from != DType::Float16 &&
          from != DType::BFloat16) {
        Tensor f(DType::Float, x.shape());
        cast(ctx, x, f);
        return cast(ctx, f, y);
      }
      dispatch_float(from, what.c_str(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        elementwise::map_unary<uint8_t, T>(
            y, x, [&](T v) { return encode_small_float(to, static_cast<float>(v)); });
      });
    } else if (is_small_int(to)) {
      const int bits = small_int_bits(to);
      const bool sign = dtype_is_signed(to);
      const auto narrow = [bits, sign](int64_t v) {
        // Keep the low bits; signed types hold their value sign-extended to the byte.
        const auto low = static_cast<uint8_t>(v & ((1 << bits) - 1));
        const bool negative = sign && (low >> (bits - 1)) != 0;
        return negative ? static_cast<uint8_t>(low | (0xff << bits)) : low;
      };
      if (!dtype_is_float(from)) {
        // The Cast schema for integer sources: "when OOR, discard higher bits and reinterpret".
        Tensor wide(DType::Int64, x.shape());
        cast(ctx, x, wide);
        return elementwise::map_unary<uint8_t, int64_t>(y, wide, narrow);
      }
      // ONNX's int4.md (int2.md alike): "Cast to a 4 bit type is done by rounding to the
      // nearest-integer (with ties to even) nearest-even integer and truncating." The rounding
      // is defined. "Truncating" does not say whether high bits are dropped or the value is
      // clamped, and the Cast schema leaves it open: "Casting from floating point to: [...]
      // fixed point: undefined if OOR." So a float whose rounded value does not fit the type
      // has no defined result; graft keeps the low bits of the rounded value, as for integer
      // sources (NaN, infinities and values beyond int64 give 0).
      dispatch_float(from, what.c_str(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        elementwise::map_unary<uint8_t, T>(y, x, [&narrow](T v) {
          // nearbyint in the default rounding mode rounds halves to even.
          const double rounded = std::nearbyint(static_cast<double>(static_cast<compute_t<T>>(v)));
          return narrow(float_to_int<int64_t>(rounded));
        });
      });
    } else {
      dispatch_numeric(from, what.c_str(), [&](auto from_tag) {
        using F = typename decltype(from_tag)::type;
        dispatch_numeric(to, what.c_str(), [&](auto to_tag) {
          using T = typename decltype(to_tag)::type;
          elementwise::map_unary<T, F>(y, x, [](F v) { return convert<T, F>(v); });
        });
      });
    }
  }

  // A small float or small integer tensor as float, int8 or uint8.
  static Tensor widen(const KernelContext& ctx, const Tensor& x) {
    const DType from = x.dtype();
    if (is_small_float(from)) {
      Tensor f(DType::Float, x.shape());
      elementwise::map_unary<float, uint8_t>(
          f, x, [from](uint8_t b) { return small_float_to_float(from, b); });
      return f;
    }
    if (!is_small_int(from)) {
      ctx.fail(std::string("cannot cast from ") + dtype_name(from));
    }
    const int bits = small_int_bits(from);
    const bool sign = dtype_is_signed(from);
    Tensor w(sign ? DType::Int8 : DType::UInt8, x.shape());
    elementwise::map_unary<uint8_t, uint8_t>(w, x, [bits, sign](uint8_t b) {
      const auto low = static_cast<uint8_t>(b & ((1 << bits) - 1));
      const bool negative = sign && (low >> (bits - 1)) != 0;
      return negative ? static_cast<uint8_t>(low | (0xff << bits)) : low;
    });
    return w;
  }

  uint8_t encode_small_float(DType to, float v) const {
    if (to == DType::Float8E8M0) return to_e8m0(v, saturate_, round_mode_);
    // float4e2m1 has no NaN; the ONNX reference (ml_dtypes) maps NaN to a zero of the
    // opposite sign, and always saturates.
    if (to == DType::Float4E2M1) {
      if (std::isnan(v)) return std::signbit(v) ? 0x0 : 0x8;
      return float_to_small_float(to, v, true);
    }
    return float_to_small_float(to, v, saturate_);
  }

  bool like_;
  DType to_ = DType::Undefined;
  bool saturate_;
  std::string round_mode_;
};

}  // namespace

GRAFT_CPU_KERNELS(math_cast) {
  elementwise::register_versions(reg, "Cast", {1, 6, 9, 13, 19, 21, 23, 24, 25}, {},
                                 make<CastKernel>);
  elementwise::register_versions(reg, "CastLike", {15, 19, 21, 23, 24, 25}, {}, make<CastKernel>);
}

}  // namespace graft
