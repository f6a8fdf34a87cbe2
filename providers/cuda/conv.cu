// Conv, ConvTranspose and ConvGrad (kernels/conv.h) on the device.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/conv.h"

namespace graft::cuda {

void register_conv_kernels(KernelRegistry& reg) { register_conv<CudaBackend>(reg); }

}  // namespace graft::cuda
