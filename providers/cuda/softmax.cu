// Softmax, LogSoftmax and SoftmaxGrad (kernels/softmax.h) on the device.
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/kernels.h"
#include "providers/cuda/kernels/softmax.h"

namespace graft::cuda {

void register_softmax_kernels(KernelRegistry& reg) { register_softmax<CudaBackend>(reg); }

}  // namespace graft::cuda
