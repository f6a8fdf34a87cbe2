// Conversions between strings and numbers for Cast: parsing ONNX numeric literals and
// formatting numbers as NumPy's str() does (shortest digits that read back to the same value).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "exec/dtype.h"
#include "exec/kernel.h"

namespace graft {

// Parses a decimal or scientific literal, or INF, +INF, -INF, NaN in any case, with optional
// surrounding spaces. ctx.fail() names the string when it is not a number.
double parse_float_string(const KernelContext& ctx, const std::string& s);
// Like parse_float_string, exact for integers of up to 64 bits; a fractional literal is
// truncated toward zero, and "true"/"false" give 1 and 0.
int64_t parse_int_string(const KernelContext& ctx, const std::string& s);

// "0.5", "3.0", "1e-05", "1e+20", "nan", "-inf": the shortest digits that read back to `v` in
// its own precision, positional from 1e-4 up to 1e16 (1e6 for float, 1e3 for float16, 1e2 for
// bfloat16), else scientific. `float_bits` names the
// precision: 64, 32, 16 (float16) or -16 (bfloat16).
std::string format_float(double v, int float_bits);

template <typename T>
std::string format_number(T v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "True" : "False";
  } else if constexpr (std::is_integral_v<T>) {
    return std::to_string(v);
  } else if constexpr (std::is_same_v<T, Float16>) {
    return format_float(static_cast<float>(v), 16);
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    return format_float(static_cast<float>(v), -16);
  } else {
    return format_float(static_cast<double>(v), sizeof(T) * 8);
  }
}

}  // namespace graft
