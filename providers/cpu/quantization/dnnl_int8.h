// Int8 convolutions and matrix products through oneDNN's int8 primitives: 8-bit activations
// times int8 weights with int32 accumulation (VNNI on AVX-512), then int32 output, a
// requantization to 8 bits (per-tensor or per-output-channel scales, output zero point), or for
// products float output scaled (and biased) by values given with each call. The
// weights are reordered into the primitive's own layout once, when the object is built, so the
// caller may drop its copy; primitives are built per input geometry and kept by the object.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "exec/dtype.h"

namespace graft::cpu {

// Whether to run (x - x_zero) * w for activations of `x_dtype` and these weights through
// oneDNN's int8 primitives on this CPU. With VNNI (vpdpbusd) they are exact. Without it they
// multiply with vpmaddubsw, which adds neighbouring u8 * s8 products in saturating int16 (as
// onnxruntime's kernels do there): exact only for uint8 activations and weights in [-64, 64]
// (onnxruntime's reduce_range). When `exact` is false (cpu::int8_exact) that saturation is
// accepted for uint8 activations; signed activations are shifted by 128 and the weights halved,
// which rounds every weight, so they take oneDNN only where exact.
bool dnnl_int8_usable(bool exact, DType x_dtype, const int8_t* w, int64_t count);

// What stays fixed for one int8 operation: the activation and result types and the
// requantization.
struct Int8Requant {
  DType x_dtype = DType::UInt8;  // UInt8 or Int8
  DType y_dtype = DType::Int32;  // Int32 (no requantization), UInt8 or Int8
  // y = saturate(round(acc * scale) + y_zero): one scale, or one per output channel / column.
  // Empty for Int32 output, and when the scales come with each call.
  std::vector<float> scales;
  int32_t y_zero = 0;
  // Matrix products only: y_dtype Float, y = acc * scale (+ bias) with `scale_count` scales
  // (1 or n) and the bias (n floats, when `bias`) given to each run().
  int64_t scale_count = 0;
  bool bias = false;
};

// The fixed part of a 2-D convolution: w is [maps, channels / group, kernel...].
struct Int8ConvSpec {
  int64_t channels = 0, maps = 0, group = 1;
  int64_t kernel[2] = {1, 1}, strides[2] = {1, 1}, dilations[2] = {1, 1};
  int32_t x_zero = 0;
  Int8Requant requant;
};

// The geometry of one call: x [batch, channels, in...] -> y [batch, maps, out...]; pads are
// ONNX's (begins, then ends).
struct Int8ConvGeometry {
  int64_t batch = 0;
  int64_t in[2] = {0, 0}, out[2] = {0, 0}, pads[4] = {0, 0, 0, 0};
};

// y = requantize(conv(x - x_zero, w) + bias) on plain NCHW or NHWC tensors.
class DnnlInt8Conv {
 public:
  // Packs `w` (int8, [maps, channels / group, kernel...]) and `bias` (maps int32 values, or
  // null); neither is read afterwards. Throws Fail when oneDNN cannot build the convolution.
  DnnlInt8Conv(const Int8ConvSpec& spec, const int8_t* w, const int32_t* bias);
  ~DnnlInt8Conv();
  // x and y are dense NCHW buffers of the spec's dtypes, or NHWC ones when `channels_last`.
  // Safe to call from several threads.
  void run(const Int8ConvGeometry& g, const void* x, void* y, bool channels_last = false) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// y [m, n] = requantize((a [m, k] - a_zero) * b [k, n]), row-major.
class DnnlInt8MatMul {
 public:
  // Packs `b` (int8, row-major [k, n]); it is not read afterwards. `requant.scales` has one
  // value or n. Throws Fail when oneDNN cannot build the product.
  DnnlInt8MatMul(int64_t k, int64_t n, const int8_t* b, const Int8Requant& requant);
  ~DnnlInt8MatMul();
  // a and y are dense row-major buffers of the requant's dtypes. Safe to call from several
  // threads.
  // `scales` and `bias` as the requant's scale_count and bias say (null otherwise).
  void run(int64_t m, const void* a, int32_t a_zero, void* y, const float* scales = nullptr,
           const float* bias = nullptr) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace graft::cpu
