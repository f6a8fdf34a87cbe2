// Dropout (kernels/dropout.h) on the device.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/dropout.h"

namespace graft::cuda {

void register_dropout_kernels(KernelRegistry& reg) { register_dropout<CudaBackend>(reg); }

}  // namespace graft::cuda
