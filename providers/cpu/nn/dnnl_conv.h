// 2-D float convolutions through oneDNN's primitives: forward, backward data and backward
// weights. oneDNN picks its own (blocked) layouts; operands are reordered from and to graft's
// plain NCHW / OIHW tensors around each call. Primitives are built once per geometry and kept in
// a least-recently-used cache of primitive_cache_capacity() entries (primitive_cache.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace graft::cpu {

// The geometry of one convolution: y[N, M, OH, OW] = conv(x[N, C, H, W], w[M, C/G, KH, KW]).
// `pads` are ONNX's (begins, then ends); strides and dilations are ONNX's (1 = dense).
struct DnnlConvShape {
  int64_t batch, channels, maps, group;
  int64_t in[2], kernel[2], out[2];
  int64_t strides[2], dilations[2], pads[4];
};

// Whether oneDNN takes this geometry (2-D, groups dividing the channels). The callers fall back
// to their own loops otherwise.
bool dnnl_conv_supported(const DnnlConvShape& s);

// y = conv(x, w) + b; b may be null.
void dnnl_conv_forward(const DnnlConvShape& s, const float* x, const float* w, const float* b,
                       float* y);
// The gradients of the input (dx), the weights (dw) and the bias (db) from dy; a null output is
// not computed (db needs dw). dy is brought into oneDNN's layout once for both passes.
void dnnl_conv_backward(const DnnlConvShape& s, const float* x, const float* w, const float* dy,
                        float* dx, float* dw, float* db);

// How many primitives (one per geometry and pass) the cache holds now, at most
// primitive_cache_capacity().
std::size_t dnnl_conv_cached_primitives();

}  // namespace graft::cpu
