// The reductions (kernels/reduce.h) on the device.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/reduce.h"

namespace graft::cuda {

void register_reduce_kernels(KernelRegistry& reg) { register_reduce<CudaBackend>(reg); }

}  // namespace graft::cuda
