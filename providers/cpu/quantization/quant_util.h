// Helpers shared by the quantization kernels: the ranges of quantized integer types, reading any
// numeric or quantized tensor as doubles, rounding to a float type's precision, the layout of
// scales and zero points, broadcasting of per-row parameters, and the int32 GEMM and
// convolution behind ConvInteger, QLinearConv and QLinearMatMul.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "exec/kernel.h"
#include "providers/cpu/nn/conv_util.h"

namespace graft::cpu {

// Whether `dtype` is an integer type a quantizer saturates to: 8 and 16 bits, 4 and 2 bits.
bool is_quant_integer(DType dtype);
// The saturation range [lo, hi] of an integer type of 32 bits or less (sub-byte ones included).
std::pair<int64_t, int64_t> integer_range(DType dtype);

// Every element of `t` as a double: float types, integers of any width (4- and 2-bit ones
// included) and the float8/float4 formats. Throws Fail naming `what` for other dtypes.
std::vector<double> to_double_values(const Tensor& t, const char* what);

// `value` rounded to the precision of the float type `dtype` (float, float16, bfloat16; double
// and any other dtype leave it unchanged).
double round_to_dtype(DType dtype, double value);

// round_half_even(q) + zero saturated to [lo, hi], in float. NaN gives lo, as the reference's
// conversion through int32 does. Branch-free, so loops over it vectorize.
template <typename Q>
inline Q saturate_round(float q, float zero, float lo, float hi) {
  // Adding 1.5 * 2^23 rounds |q| < 2^22 to an integer, ties to even; larger magnitudes saturate
  // whatever the rounding.
  constexpr float kRound = 12582912.0f;
  float v = (q + kRound) - kRound + zero;
  v = v > lo ? v : lo;
  v = v < hi ? v : hi;
  return static_cast<Q>(static_cast<int32_t>(v));
}

// round_half_even(v) saturated to the integer bounds [lo, hi], in double. NaN gives lo.
inline double saturate_round_double(double v, double lo, double hi) {
  constexpr double kRound = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds, ties even
  v = v > lo ? (v < hi ? v : hi) : lo;
  return (v + kRound) - kRound;
}

// Where the scale (and zero point) of a quantized tensor applies. x is viewed as
// [outer, dim, inner] around the quantization axis.
struct QuantLayout {
  enum class Kind { PerTensor, PerAxis, Blocked };
  Kind kind = Kind::PerTensor;
  int64_t outer = 1, dim = 1, inner = 1;
  int64_t block = 0;  // Blocked: the scale is [outer, ceil(dim / block), inner]

  // Offset in the scale of the element (o, a, 0) of x; the element (o, a, i) adds
  // i * inner_step().
  int64_t row_offset(int64_t o, int64_t a) const {
    switch (kind) {
      case Kind::PerTensor:
        return 0;
      case Kind::PerAxis:
        return a;
      case Kind::Blocked:
        return (o * ((dim + block - 1) / block) + a / block) * inner;
    }
    return 0;
  }
  int64_t inner_step() const { return kind == Kind::Blocked ? 1 : 0; }
};

// The layout of `scale` for x of shape `x_shape`: a single element is per-tensor; a 1-D tensor
// with x's `axis` dim is per-axis; with `block_size` > 0, a tensor of x's rank whose `axis` dim
// is ceil(D / block_size) is blocked. `axis` may be negative. Fails with the node named otherwise.
QuantLayout resolve_quant_layout(const Shape& x_shape, const Shape& scale_shape, int64_t axis,
                                 int64_t block_size, const KernelContext& ctx);

// `values` laid out as `from` broadcast (NumPy rules, right-aligned) to `to`. Returns false when
// `from` does not broadcast to `to`.
template <typename T>
bool broadcast_values(const std::vector<T>& values, const Shape& from, const Shape& to,
                      std::vector<T>& out) {
  if (from.size() > to.size()) return false;
  const size_t pad = to.size() - from.size();
  std::vector<int64_t> strides(to.size(), 0);
  int64_t stride = 1;
  for (size_t d = to.size(); d-- > pad;) {
    const int64_t f = from[d - pad];
    if (f != to[d] && f != 1) return false;
    strides[d] = f == 1 ? 0 : stride;
    stride *= f;
  }
  const int64_t count = shape_size(to);
  out.resize(static_cast<size_t>(count));
  std::vector<int64_t> index(to.size(), 0);
  int64_t src = 0;
  for (int64_t i = 0; i < count; ++i) {
    out[static_cast<size_t>(i)] = values[static_cast<size_t>(src)];
    for (size_t d = to.size(); d-- > 0;) {
      src += strides[d];
      if (++index[d] < to[d]) break;
      src -= strides[d] * to[d];
      index[d] = 0;
    }
  }
  return true;
}

// C[m x n] = A[m x k] * B[k x n] for packed row-major int32 matrices; the sums wrap in 32 bits.
// Small operands (|a| * |b| * k below 2^24, as zero-point-adjusted 8-bit data usually are) go
// through the float GEMM, which is exact for them.
void int32_gemm(int64_t m, int64_t n, int64_t k, const int32_t* a, const int32_t* b, int32_t* c);

// An integer convolution: x [N, C, in...] and w [M, C / group, k...], zero points already
// subtracted.
struct IntConvProblem {
  int64_t batch = 0, channels = 0, maps = 0, group = 1;
  WindowGeometry g;
  Shape output_shape() const;
};

// Checks x and w against the window attributes and `group`; fails with the node named when they
// disagree.
IntConvProblem resolve_int_conv(const Tensor& x, const Tensor& w, const WindowAttrs& attrs,
                                int64_t group, const KernelContext& ctx);

// y [N, M, out...] = conv(x, w) in int32.
void int32_conv(const IntConvProblem& p, const int32_t* x, const int32_t* w, int32_t* y);

// Widens an int8 or uint8 tensor to int32, subtracting `zero_point`: none (empty), one value,
// or one value per index along dim 0 of t. Fails naming `what` for other dtypes or sizes.
std::vector<int32_t> widen_8bit(const Tensor& t, const std::vector<int32_t>& zero_point,
                                const char* what, const KernelContext& ctx);

// The values of an optional 8-bit zero point input (empty when absent). Fails unless its dtype
// is `dtype`.
std::vector<int32_t> zero_point_values(const KernelContext& ctx, int index, DType dtype,
                                       const char* what);

}  // namespace graft::cpu
