// Branch-free float exp and tanh that the compiler vectorizes inside elementwise loops (libm's
// expf and tanhf are scalar calls). Both are within 2 ulp of the correctly rounded result over
// the whole float range, keep inf and NaN semantics, and are used for float and half types;
// double keeps libm.
#pragma once

#include <bit>
#include <cstdint>

namespace graft::fast_math {

inline float exp(float x) {
  // x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite split of ln2), exp(r) by Cephes' expf
  // polynomial, then scaled by 2^n in two steps so that subnormal results stay exact.
  const float clamped = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (clamped * 1.44269504088896341f + shifter) - shifter;
  const float r = (clamped - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const auto k = static_cast<int32_t>(n);
  const int32_t k1 = k / 2;
  const int32_t k2 = k - k1;
  const float s1 = std::bit_cast<float>((k1 + 127) << 23);
  const float s2 = std::bit_cast<float>((k2 + 127) << 23);
  const float result = y * s1 * s2;
  return x != x ? x : result;  // NaN stays NaN
}

inline float tanh(float x) {
  const float a = x < 0 ? -x : x;
  // Small |x|: Cephes' tanhf odd polynomial; larger: 1 - 2 / (exp(2|x|) + 1), with the sign.
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float e = exp(2.0f * (a > 20.0f ? 20.0f : a));
  const float large_abs = 1.0f - 2.0f / (e + 1.0f);
  const float large = x < 0 ? -large_abs : large_abs;
  return a < 0.625f ? small : large;  // NaN: `small` is NaN
}

}  // namespace graft::fast_math
