// The fused optimizer updates (kernels/optimizer.h) on the device.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/optimizer.h"

namespace graft::cuda {

void register_optimizer_kernels(KernelRegistry& reg) { register_optimizer<CudaBackend>(reg); }

}  // namespace graft::cuda
