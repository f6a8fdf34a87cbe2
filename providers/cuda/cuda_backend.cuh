// CudaBackend: the device side of the kernel templates in providers/cuda/kernels (backend.h lists
// what a backend offers). Every call is enqueued on the compute stream of the provider that owns
// the backend; nothing here waits for the device.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "providers/cuda/device.h"
#include "providers/cuda/kernels/backend.h"
#include "providers/cuda/kernels/blas.h"
#include "providers/cuda/kernels/dnn.h"

namespace graft::cuda {

inline constexpr int kThreadsPerBlock = 256;
// Grid-stride loops stop growing the grid here; each thread then takes several elements.
inline constexpr int64_t kMaxBlocks = 65535LL * 8;

template <class F>
__global__ void for_each_kernel(int64_t n, F f) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    f(i);
}

// One block per row (rows strided over the grid): each thread folds a strided share of the row,
// then the block combines the partial results in shared memory.
template <class Op>
__global__ void reduce_rows_kernel(int64_t rows, int64_t cols, Op op) {
  using A = typename Op::Acc;
  extern __shared__ unsigned char shared_bytes[];
  A* partial = reinterpret_cast<A*>(shared_bytes);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    A acc = op.identity();
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) acc = op.combine(acc, op.load(r, j));
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s)
        partial[threadIdx.x] = op.combine(partial[threadIdx.x], partial[threadIdx.x + s]);
      __syncthreads();
    }
    if (threadIdx.x == 0) op.store(r, partial[0]);
    __syncthreads();
  }
}

// Short rows: one thread per row.
template <class Op>
__global__ void reduce_short_rows_kernel(int64_t rows, int64_t cols, Op op) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < rows;
       r += stride) {
    typename Op::Acc acc = op.identity();
    for (int64_t j = 0; j < cols; ++j) acc = op.combine(acc, op.load(r, j));
    op.store(r, acc);
  }
}

class CudaBackend {
 public:
  // Launches on `stream` (the compute stream of a provider on CUDA device `device`), allocates
  // from `allocator` (device memory ordered on that stream); `use_tf32`: the provider option
  // letting float32 matrix products round their inputs to TF32.
  CudaBackend(int device, cudaStream_t stream, Allocator& allocator, bool use_tf32)
      : device_(device), stream_(stream), allocator_(allocator), use_tf32_(use_tf32) {}

  Allocator& allocator() const { return allocator_; }
  cudaStream_t stream() const { return stream_; }
  int device() const { return device_; }
  bool use_tf32() const { return use_tf32_; }

  template <class F>
  void for_each(int64_t n, const F& f) const {
    if (n <= 0) return;
    const int64_t blocks = std::min((n + kThreadsPerBlock - 1) / kThreadsPerBlock, kMaxBlocks);
    for_each_kernel<<<static_cast<unsigned>(blocks), kThreadsPerBlock, 0, stream_>>>(n, f);
    check(cudaGetLastError(), "launching an elementwise kernel");
  }

  template <class Op>
  void reduce_rows(int64_t rows, int64_t cols, const Op& op) const {
    if (rows <= 0) return;
    if (cols <= 32) {
      const int64_t blocks = std::min((rows + kThreadsPerBlock - 1) / kThreadsPerBlock, kMaxBlocks);
      reduce_short_rows_kernel<<<static_cast<unsigned>(blocks), kThreadsPerBlock, 0, stream_>>>(
          rows, cols, op);
    } else {
      const int threads = cols >= 1024 ? 512 : (cols >= 256 ? 256 : 64);
      const int64_t blocks = std::min(rows, kMaxBlocks);
      reduce_rows_kernel<<<static_cast<unsigned>(blocks), threads,
                           threads * sizeof(typename Op::Acc), stream_>>>(rows, cols, op);
    }
    check(cudaGetLastError(), "launching a reduction kernel");
  }

  void copy(void* dst, const void* src, size_t bytes) const {
    if (bytes > 0)
      check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), "cudaMemcpyAsync");
  }
  void fill(void* dst, int byte, size_t bytes) const {
    if (bytes > 0) check(cudaMemsetAsync(dst, byte, bytes, stream_), "cudaMemsetAsync");
  }
  // Convolution, pooling and batch normalization (contracts in kernels/dnn.h; cudnn.cu).
  void conv_forward(const ConvDesc& d, const void* x, const void* w, void* y) const;
  void conv_backward_data(const ConvDesc& d, const void* w, const void* dy, void* dx) const;
  void conv_backward_filter(const ConvDesc& d, const void* x, const void* dy, void* dw) const;
  void pool_forward(const PoolDesc& d, const void* x, void* y) const;
  void batch_norm_inference(const BatchNormDesc& d, const void* x, const void* scale,
                            const void* bias, const void* mean, const void* var, void* y) const;
  void batch_norm_training(const BatchNormDesc& d, const void* x, const void* scale,
                           const void* bias, void* y, void* saved_mean, void* saved_inv_std) const;
  void batch_norm_backward(const BatchNormDesc& d, const void* x, const void* dy, const void* scale,
                           void* dx, void* dscale, void* dbias) const;
  uint64_t next_seed() { return seed_++; }
  void gemm(const GemmDesc& desc, const void* a, const void* b, void* c,
            const void* bias = nullptr) const;  // blas.h; providers/cuda/blas.cu

 private:
  int device_;
  cudaStream_t stream_;
  Allocator& allocator_;
  bool use_tf32_;
  uint64_t seed_ = 0x5eed;
};

}  // namespace graft::cuda
