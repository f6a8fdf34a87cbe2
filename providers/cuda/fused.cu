// The fused elementwise chains (kernels/fused.h) on the device.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/fused.h"

namespace graft::cuda {

void register_fused_kernels(KernelRegistry& reg) { register_fused<CudaBackend>(reg); }

}  // namespace graft::cuda
