// The data movement and shape kernels (kernels/tensor.h) on the device.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/tensor.h"

namespace graft::cuda {

void register_tensor_kernels(KernelRegistry& reg) { register_tensor<CudaBackend>(reg); }

}  // namespace graft::cuda
