// MatMul, Gemm and com.graft FusedMatMul (kernels/matmul.h) on the device, through cuBLASLt.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/matmul.h"

namespace graft::cuda {

void register_matmul_kernels(KernelRegistry& reg) { register_matmul<CudaBackend>(reg); }

}  // namespace graft::cuda
