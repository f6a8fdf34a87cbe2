// SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss (kernels/loss.h) on the device.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/loss.h"

namespace graft::cuda {

void register_loss_kernels(KernelRegistry& reg) { register_loss<CudaBackend>(reg); }

}  // namespace graft::cuda
