#include "exec/dtype.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "exec/dispatch.h"
#include "ir/error.h"

namespace graft {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::Undefined:
      return 0;
    case DType::Float:
    case DType::Int32:
    case DType::UInt32:
      return 4;
    case DType::Double:
    case DType::Int64:
    case DType::UInt64:
    case DType::Complex64:
      return 8;
    case DType::Complex128:
      return 16;
    case DType::Int16:
    case DType::UInt16:
    case DType::Float16:
    case DType::BFloat16:
      return 2;
    case DType::String:
      return sizeof(std::string);
    default:
      return 1;
  }
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Undefined:
      return "undefined";
    case DType::Float:
      return "float";
    case DType::UInt8:
      return "uint8";
    case DType::Int8:
      return "int8";
    case DType::UInt16:
      return "uint16";
    case DType::Int16:
      return "int16";
    case DType::Int32:
      return "int32";
    case DType::Int64:
      return "int64";
    case DType::String:
      return "string";
    case DType::Bool:
      return "bool";
    case DType::Float16:
      return "float16";
    case DType::Double:
      return "double";
    case DType::UInt32:
      return "uint32";
    case DType::UInt64:
      return "uint64";
    case DType::Complex64:
      return "complex64";
    case DType::Complex128:
      return "complex128";
    case DType::BFloat16:
      return "bfloat16";
    case DType::Float8E4M3FN:
      return "float8e4m3fn";
    case DType::Float8E4M3FNUZ:
      return "float8e4m3fnuz";
    case DType::Float8E5M2:
      return "float8e5m2";
    case DType::Float8E5M2FNUZ:
      return "float8e5m2fnuz";
    case DType::UInt4:
      return "uint4";
    case DType::Int4:
      return "int4";
    case DType::Float4E2M1:
      return "float4e2m1";
    case DType::Float8E8M0:
      return "float8e8m0";
    case DType::UInt2:
      return "uint2";
    case DType::Int2:
      return "int2";
  }
  return "unknown";
}

bool dtype_is_float(DType d) {
  return d == DType::Float || d == DType::Double || d == DType::Float16 || d == DType::BFloat16;
}

bool dtype_is_integer(DType d) {
  switch (d) {
    case DType::Int8:
    case DType::Int16:
    case DType::Int32:
    case DType::Int64:
    case DType::UInt8:
    case DType::UInt16:
    case DType::UInt32:
    case DType::UInt64:
      return true;
    default:
      return false;
  }
}

bool dtype_is_signed(DType d) {
  switch (d) {
    case DType::Int8:
    case DType::Int16:
    case DType::Int32:
    case DType::Int64:
    case DType::Int4:
    case DType::Int2:
      return true;
    default:
      return dtype_is_float(d) || dtype_is_float8(d);
  }
}

bool dtype_is_sub_byte(DType d) {
  return d == DType::Int4 || d == DType::UInt4 || d == DType::Int2 || d == DType::UInt2 ||
         d == DType::Float4E2M1;
}

bool dtype_is_float8(DType d) {
  return d == DType::Float8E4M3FN || d == DType::Float8E4M3FNUZ || d == DType::Float8E5M2 ||
         d == DType::Float8E5M2FNUZ || d == DType::Float8E8M0 || d == DType::Float4E2M1;
}

void throw_unsupported_dtype(DType dtype, const char* what) {
  throw InvalidArgument(std::string(what) + ": element type " + dtype_name(dtype) +
                        " is not supported");
}

namespace {

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

Float16::Float16(float f) {
  // Round to nearest even, with overflow to inf and gradual underflow.
  uint32_t x = float_bits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or NaN
    bits = static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
    return;
  }
  if (abs >= 0x477ff000u) {  // rounds to >= 65520: overflow
    bits = static_cast<uint16_t>(sign | 0x7c00u);
    return;
  }
  if (abs < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    float v = bits_float(abs);
    // Scale so the subnormal quantum 2^-24 becomes 1, then round half to even.
    float scaled = v * 16777216.0f;
    auto m = static_cast<uint32_t>(std::nearbyint(scaled));
    bits = static_cast<uint16_t>(sign | m);
    return;
  }
  uint32_t mant = abs & 0x7fffffu;
  uint32_t exp = (abs >> 23) - 127 + 15;
  uint32_t h = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  bits = static_cast<uint16_t>(sign | h);
}

Float16::operator float() const {
  uint32_t sign = (static_cast<uint32_t>(bits) & 0x8000u) << 16;
  uint32_t exp = (bits >> 10) & 0x1fu;
  uint32_t mant = bits & 0x3ffu;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

BFloat16::BFloat16(float f) {
  uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) {
    bits = static_cast<uint16_t>((x >> 16) | 0x40u);
    return;
  }
  uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
  bits = static_cast<uint16_t>((x + rounding) >> 16);
}

BFloat16::operator float() const { return bits_float(static_cast<uint32_t>(bits) << 16); }

namespace {

// A small IEEE-like float format: sign bit, `exp_bits` exponent bits, `man_bits` mantissa bits.
struct SmallFormat {
  int exp_bits;
  int man_bits;
  int bias;
  enum Special { kFN, kUZ, kIEEE, kNone } special;
  uint8_t max_bits;  // encoding of the largest finite magnitude
};

SmallFormat format_of(DType dtype) {
  switch (dtype) {
    case DType::Float8E4M3FN:
      return {4, 3, 7, SmallFormat::kFN, 0x7e};
    case DType::Float8E4M3FNUZ:
      return {4, 3, 8, SmallFormat::kUZ, 0x7f};
    case DType::Float8E5M2:
      return {5, 2, 15, SmallFormat::kIEEE, 0x7b};
    case DType::Float8E5M2FNUZ:
      return {5, 2, 16, SmallFormat::kUZ, 0x7f};
    case DType::Float4E2M1:
      return {2, 1, 1, SmallFormat::kNone, 0x7};
    default:
      throw_unsupported_dtype(dtype, "small float conversion");
  }
}

float decode(const SmallFormat& f, uint8_t bits) {
  int sign_shift = f.exp_bits + f.man_bits;
  bool neg = (bits >> sign_shift) & 1;
  uint32_t exp = (bits >> f.man_bits) & ((1u << f.exp_bits) - 1);
  uint32_t man = bits & ((1u << f.man_bits) - 1);
  uint32_t exp_all = (1u << f.exp_bits) - 1, man_all = (1u << f.man_bits) - 1;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  if (f.special == SmallFormat::kUZ && bits == 0x80) return nan;
  if (f.special == SmallFormat::kFN && exp == exp_all && man == man_all) return nan;
  if (f.special == SmallFormat::kIEEE && exp == exp_all) {
    if (man != 0) return nan;
    return neg ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  }
  float v = exp == 0
                ? std::ldexp(static_cast<float>(man), 1 - f.bias - f.man_bits)
                : std::ldexp(1.0f + static_cast<float>(man) / static_cast<float>(1u << f.man_bits),
                             static_cast<int>(exp) - f.bias);
  return neg ? -v : v;
}

uint8_t encode(const SmallFormat& f, float value, bool saturate) {
  int sign_shift = f.exp_bits + f.man_bits;
  uint8_t sign = std::signbit(value) ? static_cast<uint8_t>(1u << sign_shift) : 0;
  uint8_t nan_bits = f.special == SmallFormat::kUZ ? 0x80 : static_cast<uint8_t>(sign | 0x7f);
  if (std::isnan(value))
    return f.special == SmallFormat::kNone ? static_cast<uint8_t>(sign | f.max_bits) : nan_bits;
  float max = decode(f, f.max_bits);
  float a = std::fabs(value);
  auto overflow = [&]() -> uint8_t {
    if (saturate || f.special == SmallFormat::kNone) return static_cast<uint8_t>(sign | f.max_bits);
    if (f.special == SmallFormat::kIEEE) return static_cast<uint8_t>(sign | 0x7c);
    return nan_bits;
  };
  if (std::isinf(a)) return overflow();
  // Round half to even at the quantum of a's binade (or the subnormal quantum).
  int e;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  int min_exp = 1 - f.bias;
  int q_exp = std::max(e - 1, min_exp) - f.man_bits;
  float rounded = std::ldexp(std::nearbyint(std::ldexp(a, -q_exp)), q_exp);
  if (rounded > max) return overflow();
  if (rounded == 0.0f) return f.special == SmallFormat::kUZ ? 0 : sign;
  std::frexp(rounded, &e);
  int field = e - 1 + f.bias;
  uint32_t man;
  if (field <= 0) {
    field = 0;
    man = static_cast<uint32_t>(std::ldexp(rounded, f.bias - 1 + f.man_bits));
  } else {
    man = static_cast<uint32_t>(std::ldexp(rounded, -(e - 1) + f.man_bits)) - (1u << f.man_bits);
  }
  return static_cast<uint8_t>(sign | (static_cast<uint32_t>(field) << f.man_bits) | man);
}

}  // namespace

uint8_t float_to_small_float(DType dtype, float value, bool saturate) {
  if (dtype == DType::Float8E8M0) {
    // Exponent-only format, rounding up (the Cast default): 2^(bits - 127); 0xff is NaN.
    if (std::isnan(value) || std::isinf(value) || value <= 0.0f) {
      if (value <= 0.0f && !std::isnan(value)) return 0;
      return saturate && std::isinf(value) ? 0xfe : 0xff;
    }
    int e;
    float m = std::frexp(value, &e);
    int exp = m == 0.5f ? e - 1 : e;
    return static_cast<uint8_t>(std::clamp(exp + 127, 0, 254));
  }
  return encode(format_of(dtype), value, saturate);
}

float small_float_to_float(DType dtype, uint8_t bits) {
  if (dtype == DType::Float8E8M0) {
    if (bits == 0xff) return std::numeric_limits<float>::quiet_NaN();
    return std::ldexp(1.0f, static_cast<int>(bits) - 127);
  }
  return decode(format_of(dtype), bits);
}

}  // namespace graft
