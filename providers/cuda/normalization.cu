// LayerNormalization and LayerNormGrad (kernels/normalization.h) on the device.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/normalization.h"

namespace graft::cuda {

void register_normalization_kernels(KernelRegistry& reg) {
  register_normalization<CudaBackend>(reg);
}

}  // namespace graft::cuda
