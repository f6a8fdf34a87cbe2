// The gather and scatter kernels (kernels/gather.h) on the device.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/gather.h"

namespace graft::cuda {

void register_gather_kernels(KernelRegistry& reg) { register_gather<CudaBackend>(reg); }

}  // namespace graft::cuda
