// What the CUDA provider's kernel math is written in: plain C++ that nvcc compiles for the device
// and the host compiler compiles for the host, so every kernel's arithmetic and indexing runs in
// the host tests (tests/providers/cuda_host) against the CPU provider. Nothing here includes a
// CUDA header.
//
//   GRAFT_HD            marks a function both compilers build (__host__ __device__ under nvcc)
//   half_t, bfloat16_t  16-bit storage types; arithmetic goes through float (widen / narrow)
//   Acc<T>              the type a kernel accumulates T in
//   StridedIndex        an input's element offset for an output element under broadcasting,
//                       transposition or slicing (any per-dimension stride, 0 for broadcast)
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__CUDACC__)
#define GRAFT_HD __host__ __device__ __forceinline__
#else
#define GRAFT_HD inline
#endif

namespace graft::cuda {

// Most dimensions a kernel indexes (more are collapsed first or rejected with the node named).
inline constexpr int kMaxDims = 8;

// IEEE binary16 and bfloat16, as raw bits (the layout of graft::Float16 and graft::BFloat16).
struct half_t {
  uint16_t bits;
};
struct bfloat16_t {
  uint16_t bits;
};

GRAFT_HD uint32_t float_as_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

GRAFT_HD float bits_as_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

// Round to nearest even, overflow to inf, gradual underflow: the same bits as graft::Float16.
GRAFT_HD half_t float_to_half(float f) {
  const uint32_t x = float_as_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u)
    return {static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u))};
  if (abs >= 0x477ff000u) return {static_cast<uint16_t>(sign | 0x7c00u)};
  if (abs < 0x38800000u) {
    // Subnormal or zero: the quantum 2^-24 scaled to 1, rounded half to even.
    const float scaled = bits_as_float(abs) * 16777216.0f;
    auto m = static_cast<uint32_t>(scaled);
    const float rest = scaled - static_cast<float>(m);
    if (rest > 0.5f || (rest == 0.5f && (m & 1u))) ++m;
    return {static_cast<uint16_t>(sign | m)};
  }
  const uint32_t mant = abs & 0x7fffffu;
  const uint32_t exp = (abs >> 23) - 127 + 15;
  uint32_t h = (exp << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return {static_cast<uint16_t>(sign | h)};
}

GRAFT_HD float half_to_float(half_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h.bits) & 0x8000u) << 16;
  const uint32_t exp = (h.bits >> 10) & 0x1fu;
  const uint32_t mant = h.bits & 0x3ffu;
  if (exp == 0x1f) return bits_as_float(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    const float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  return bits_as_float(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

GRAFT_HD bfloat16_t float_to_bfloat16(float f) {
  const uint32_t x = float_as_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return {static_cast<uint16_t>((x >> 16) | 0x40u)};
  const uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
  return {static_cast<uint16_t>((x + rounding) >> 16)};
}

GRAFT_HD float bfloat16_to_float(bfloat16_t b) {
  return bits_as_float(static_cast<uint32_t>(b.bits) << 16);
}

// The type T is computed in: float for the 16-bit floats, T otherwise.
template <typename T>
struct AccOf {
  using type = T;
};
template <>
struct AccOf<half_t> {
  using type = float;
};
template <>
struct AccOf<bfloat16_t> {
  using type = float;
};
template <typename T>
using Acc = typename AccOf<T>::type;

// T -> Acc<T>.
template <typename T>
GRAFT_HD Acc<T> widen(T v) {
  return v;
}
template <>
GRAFT_HD float widen<half_t>(half_t v) {
  return half_to_float(v);
}
template <>
GRAFT_HD float widen<bfloat16_t>(bfloat16_t v) {
  return bfloat16_to_float(v);
}

// Any arithmetic value -> T (through float for the 16-bit floats).
template <typename T, typename A>
GRAFT_HD T narrow(A v) {
  if constexpr (std::is_same_v<T, half_t>) {
    return float_to_half(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, bfloat16_t>) {
    return float_to_bfloat16(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

template <typename T>
inline constexpr bool is_16bit_float = std::is_same_v<T, half_t> || std::is_same_v<T, bfloat16_t>;

// An input's element offset for each element of an output of `rank` dims: the output index
// decomposed by `dims` (row-major), dotted with `strides` (0 where the input is broadcast).
// `contiguous` is the fast path: the input is read in output order.
struct StridedIndex {
  int rank = 0;
  bool contiguous = true;
  int64_t dims[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};

  GRAFT_HD int64_t operator()(int64_t linear) const {
    if (contiguous) return linear;
    int64_t offset = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t q = linear / dims[d];
      offset += (linear - q * dims[d]) * strides[d];
      linear = q;
    }
    return offset;
  }
};

}  // namespace graft::cuda

namespace graft::cuda {

// Math functions by argument type, for both compilers (the C library names exist on both sides).
#define GRAFT_HD_MATH(name, fname)                           \
  GRAFT_HD float math_##name(float x) { return ::fname(x); } \
  GRAFT_HD double math_##name(double x) { return ::name(x); }
GRAFT_HD_MATH(exp, expf)
GRAFT_HD_MATH(log, logf)
GRAFT_HD_MATH(sqrt, sqrtf)
GRAFT_HD_MATH(tanh, tanhf)
GRAFT_HD_MATH(erf, erff)
GRAFT_HD_MATH(floor, floorf)
GRAFT_HD_MATH(ceil, ceilf)
GRAFT_HD_MATH(fabs, fabsf)
GRAFT_HD_MATH(log1p, log1pf)
GRAFT_HD_MATH(expm1, expm1f)
GRAFT_HD_MATH(sin, sinf)
GRAFT_HD_MATH(cos, cosf)
#undef GRAFT_HD_MATH
GRAFT_HD float math_pow(float x, float y) { return ::powf(x, y); }
GRAFT_HD double math_pow(double x, double y) { return ::pow(x, y); }
GRAFT_HD bool math_isnan(float x) { return x != x; }
GRAFT_HD bool math_isnan(double x) { return x != x; }

}  // namespace graft::cuda
