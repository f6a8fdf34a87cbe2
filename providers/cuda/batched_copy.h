// Many device-to-device copies in one kernel launch: how the CUDA collective kernels pack a
// bucket of tensors into the one buffer NCCL reduces. Plain C++, so nvcc and the host compiler
// both read it.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace graft::cuda {

struct CopySegment {
  const void* src;
  void* dst;
  size_t bytes;
};

// Enqueues the copies of `segments` (device memory, not overlapping) on `stream`, in launches of
// up to 64 segments each. Returns the launch error, cudaSuccess when there is none.
cudaError_t batched_copy(const CopySegment* segments, size_t count, cudaStream_t stream);

}  // namespace graft::cuda
