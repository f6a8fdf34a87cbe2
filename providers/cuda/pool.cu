// The pooling kernels (kernels/pool.h) on the device.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/pool.h"

namespace graft::cuda {

void register_pool_kernels(KernelRegistry& reg) { register_pool<CudaBackend>(reg); }

}  // namespace graft::cuda
