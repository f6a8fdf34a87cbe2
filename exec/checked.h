// Overflow-checked arithmetic for sizes: element counts, byte counts, strides, offsets and
// allocation rounding. Every size graft computes from a model or an input goes through these, so
// a size that does not fit raises InvalidArgument naming what was computed and the operands
// instead of wrapping to a small number (and a short buffer).
#pragma once

#include "ir/api.h"

#include <cstdint>
#include <string>
#include <type_traits>

namespace graft {

// Each names `what` (a std::string or a string literal, made into a message only on failure).
// Throws InvalidArgument "<what>: <a> <op> <b> overflows" (the operands as the caller's type).
[[noreturn]] GRAFT_API void throw_size_overflow(const std::string& what, const char* op,
                                                const std::string& a, const std::string& b);

// Throws InvalidArgument "<what>: <value> does not fit in a 64-bit size".
[[noreturn]] GRAFT_API void throw_size_not_int64(const std::string& what, double value);

template <typename T, typename What>
T checked_mul(T a, T b, const What& what) {
  static_assert(std::is_integral_v<T>);
  T result;
  if (__builtin_mul_overflow(a, b, &result)) {
    throw_size_overflow(std::string(what), "*", std::to_string(a), std::to_string(b));
  }
  return result;
}

template <typename T, typename What>
T checked_add(T a, T b, const What& what) {
  static_assert(std::is_integral_v<T>);
  T result;
  if (__builtin_add_overflow(a, b, &result)) {
    throw_size_overflow(std::string(what), "+", std::to_string(a), std::to_string(b));
  }
  return result;
}

template <typename T, typename What>
T checked_sub(T a, T b, const What& what) {
  static_assert(std::is_integral_v<T>);
  T result;
  if (__builtin_sub_overflow(a, b, &result)) {
    throw_size_overflow(std::string(what), "-", std::to_string(a), std::to_string(b));
  }
  return result;
}

// `value` (a size computed in floating point, such as a dimension times a scale) truncated to
// int64; throws InvalidArgument naming `what` when it is not finite or does not fit.
template <typename What>
int64_t checked_to_int64(double value, const What& what) {
  // 2^63 is the first double past INT64_MAX; a NaN fails both comparisons.
  if (!(value > -9.2233720368547758e18 && value < 9.2233720368547758e18)) {
    throw_size_not_int64(std::string(what), value);
  }
  return static_cast<int64_t>(value);
}

// The bytes of `count` elements of `element_size` bytes each; throws InvalidArgument naming
// `what` when `count` is negative or the product does not fit in size_t.
inline size_t checked_byte_count(int64_t count, size_t element_size, const char* what) {
  size_t bytes;
  if (count < 0 || __builtin_mul_overflow(static_cast<size_t>(count), element_size, &bytes)) {
    throw_size_overflow(what, "*", std::to_string(count), std::to_string(element_size));
  }
  return bytes;
}

// `bytes` rounded up to a multiple of `alignment` (a power of two); throws InvalidArgument
// naming `what` when the result does not fit in size_t.
inline size_t checked_round_up(size_t bytes, size_t alignment, const char* what) {
  return checked_add(bytes, alignment - 1, what) & ~(alignment - 1);
}

}  // namespace graft
