// BatchNormalization and BatchNormGrad (kernels/batch_norm.h) on the device.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/batch_norm.h"

namespace graft::cuda {

void register_batch_norm_kernels(KernelRegistry& reg) { register_batch_norm<CudaBackend>(reg); }

}  // namespace graft::cuda
