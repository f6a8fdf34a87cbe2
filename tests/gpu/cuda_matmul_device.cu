// The device side of tests/gpu/cuda_matmul.cc: CudaBackend's header is compiled by nvcc only.
#include "providers/cuda/cuda_backend.cuh"

namespace graft::cuda {

void gemm_on_device(int device, cudaStream_t stream, Allocator& memory, const GemmDesc& desc,
                    const void* a, const void* b, void* c, const void* bias) {
  const CudaBackend backend(device, stream, memory, desc.tf32);
  backend.gemm(desc, a, b, c, bias);
}

}  // namespace graft::cuda
