// The elementwise kernels (kernels/elementwise.h) on the device.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/elementwise.h"

namespace graft::cuda {

void register_elementwise_kernels(KernelRegistry& reg) { register_elementwise<CudaBackend>(reg); }

}  // namespace graft::cuda
