// The CUDA provider's kernels, added to its registry when the provider is first made.
#pragma once

#include "exec/kernel.h"

namespace graft::cuda {

// com.graft MemcpyFromHost / MemcpyToHost: the copies insert_device_copies puts at device
// boundaries.
void register_memcpy_kernels(KernelRegistry& reg);
// com.graft AllReduce, Broadcast, AllGather, ReduceScatter over NCCL.
void register_collective_kernels(KernelRegistry& reg);
// Each family of kernels/*.h, instantiated for the device (providers/cuda/<family>.cu).
void register_elementwise_kernels(KernelRegistry& reg);
void register_tensor_kernels(KernelRegistry& reg);
void register_gather_kernels(KernelRegistry& reg);
void register_matmul_kernels(KernelRegistry& reg);
void register_reduce_kernels(KernelRegistry& reg);
void register_softmax_kernels(KernelRegistry& reg);
void register_normalization_kernels(KernelRegistry& reg);
void register_loss_kernels(KernelRegistry& reg);
void register_training_kernels(KernelRegistry& reg);
void register_optimizer_kernels(KernelRegistry& reg);
void register_dropout_kernels(KernelRegistry& reg);
void register_fused_kernels(KernelRegistry& reg);
void register_conv_kernels(KernelRegistry& reg);
void register_pool_kernels(KernelRegistry& reg);
void register_batch_norm_kernels(KernelRegistry& reg);

}  // namespace graft::cuda
