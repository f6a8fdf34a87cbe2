// The CUDA provider's kernels are templates over a backend B, the one thing that differs between
// the device and the host tests:
//
//   CudaBackend (providers/cuda/cuda_backend.cuh): launches on the session's compute stream.
//   HostBackend (tests/providers/cuda_host/host_backend.h): the same calls as host loops over
//   host memory that its allocator reports as device memory, so the kernels run in a test
//   provider beside the CPU provider and are compared with it.
//
// What a backend offers (every functor is a copyable struct of GRAFT_HD members holding plain
// pointers and values, never a Tensor):
//
//   Allocator& allocator();                      device memory
//   void for_each(int64_t n, const F& f);        f(i) for every i in [0, n), in any order
//   void reduce_rows(int64_t rows, int64_t cols, const Op& op);
//       per row r: acc = op.identity(); acc = op.combine(acc, op.load(r, j)) for every j in
//       [0, cols) in any order and grouping; op.store(r, acc). Op::Acc is the accumulator type.
//   void copy(void* dst, const void* src, size_t bytes);   within device memory
//   void fill(void* dst, int byte, size_t bytes);
//   uint64_t next_seed();                        for the device random generator (Dropout)
//   plus the library calls of blas.h (GEMM) and dnn.h (convolution, pooling, batch norm).
//
// A kernel family is `template <class B> void register_<family>(KernelRegistry& reg)` in a header
// of this folder; providers/cuda/<family>.cu instantiates it for CudaBackend.
#pragma once

#include <string>
#include <vector>

#include "exec/dispatch.h"
#include "exec/kernel.h"
#include "exec/provider.h"
#include "exec/tensor.h"
#include "providers/cuda/kernels/common.h"

namespace graft::cuda {

// A provider whose kernels run on a backend B; kernels reach it through their KernelInfo.
template <class B>
class BackendProvider : public ExecutionProvider {
 public:
  virtual B& backend() const = 0;
};

// The backend of the provider that is building the kernel `info` describes.
template <class B>
B& backend_of(const KernelInfo& info) {
  const auto* provider = dynamic_cast<const BackendProvider<B>*>(info.provider());
  if (provider == nullptr) info.fail("a device kernel can only be built by its own provider");
  return provider->backend();
}

// Device storage type for each float DType: f(TypeTag<T>{}) with T float, double, half_t or
// bfloat16_t.
template <typename F>
decltype(auto) dispatch_device_float(DType dtype, const char* what, F&& f) {
  switch (dtype) {
    case DType::Float:
      return f(TypeTag<float>{});
    case DType::Double:
      return f(TypeTag<double>{});
    case DType::Float16:
      return f(TypeTag<half_t>{});
    case DType::BFloat16:
      return f(TypeTag<bfloat16_t>{});
    default:
      throw_unsupported_dtype(dtype, what);
  }
}

// Floats and the signed and unsigned integers of 8 to 64 bits.
template <typename F>
decltype(auto) dispatch_device_number(DType dtype, const char* what, F&& f) {
  switch (dtype) {
    case DType::Int8:
      return f(TypeTag<int8_t>{});
    case DType::Int16:
      return f(TypeTag<int16_t>{});
    case DType::Int32:
      return f(TypeTag<int32_t>{});
    case DType::Int64:
      return f(TypeTag<int64_t>{});
    case DType::UInt8:
      return f(TypeTag<uint8_t>{});
    case DType::UInt16:
      return f(TypeTag<uint16_t>{});
    case DType::UInt32:
      return f(TypeTag<uint32_t>{});
    case DType::UInt64:
      return f(TypeTag<uint64_t>{});
    default:
      return dispatch_device_float(dtype, what, std::forward<F>(f));
  }
}

// Numbers and bool.
template <typename F>
decltype(auto) dispatch_device_numeric(DType dtype, const char* what, F&& f) {
  if (dtype == DType::Bool) return f(TypeTag<bool>{});
  return dispatch_device_number(dtype, what, std::forward<F>(f));
}

// The dtypes the device kernels take for float ops and for any number.
inline const std::vector<DType> kDeviceFloatTypes = {DType::Float, DType::Double, DType::Float16,
                                                     DType::BFloat16};
inline const std::vector<DType> kDeviceNumberTypes = {
    DType::Float, DType::Double, DType::Float16, DType::BFloat16, DType::Int8,   DType::Int16,
    DType::Int32, DType::Int64,  DType::UInt8,   DType::UInt16,   DType::UInt32, DType::UInt64};

// How an input of shape `in` is read for each element of an output of shape `out` it broadcasts
// to (ranks right-aligned, each dim equal or 1). Throws InvalidArgument naming `who` when the
// output has more than kMaxDims dimensions.
StridedIndex broadcast_index(const Shape& in, const Shape& out, const std::string& who);

// An index over `dims` with the given element strides (a permutation, a slice), for an output
// in row-major order.
StridedIndex strided_index(const Shape& dims, const std::vector<int64_t>& strides,
                           const std::string& who);

// Row-major element strides of `shape`.
std::vector<int64_t> contiguous_strides(const Shape& shape);

// A device kernel: holds its backend.
template <class B>
class DeviceKernel : public Kernel {
 public:
  explicit DeviceKernel(const KernelInfo& info) : backend_(backend_of<B>(info)) {}

 protected:
  B& backend() const { return backend_; }

 private:
  B& backend_;
};

}  // namespace graft::cuda
