// The elementwise gradient kernels (kernels/training.h) on the device.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/training.h"

namespace graft::cuda {

void register_training_kernels(KernelRegistry& reg) { register_training<CudaBackend>(reg); }

}  // namespace graft::cuda
