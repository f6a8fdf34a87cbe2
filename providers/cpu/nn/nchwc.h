// The channel-blocked layout of the CPU provider's convolution chains (ir/transforms/nchwc.cc):
// a [N, C, H, W] float tensor held as [N, ceil(C / b), H, W, b], oneDNN's nChw16c (b = 16, on
// AVX-512) or nChw8c (b = 8), the channels past C zero. Such a tensor is an ordinary graft tensor;
// the com.graft kernels that read and write it (ReorderInput, ReorderOutput, NchwcConv) take b
// from its last dim, and elementwise ops (Relu, Add of two tensors of one shape) run on it as is.
#pragma once

#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>

#include "exec/tensor.h"

namespace graft::cpu {

// The CPU engine every oneDNN primitive of the provider runs on.
dnnl::engine& dnnl_cpu_engine();

// The block b that the kernels making blocked tensors use on this CPU: 16 with AVX-512, else 8.
int64_t nchwc_block();

// The blocked shape [N, ceil(C / b), H, W, b] of plain dims [N, C, H, W].
Shape nchwc_shape(int64_t batch, int64_t channels, int64_t height, int64_t width, int64_t block);

// oneDNN's descriptor of a blocked tensor of logical dims [N, C, H, W] with block `block` (8 or
// 16).
dnnl::memory::desc nchwc_desc(int64_t batch, int64_t channels, int64_t height, int64_t width,
                              int64_t block);

}  // namespace graft::cpu
