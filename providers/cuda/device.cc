#include "providers/cuda/device.h"

#include <new>

#include "distributed/backends.h"
#include "exec/error.h"

namespace graft::cuda {

void check(cudaError_t code, const std::string& what) {
  if (code != cudaSuccess) throw Fail(what + ": " + cudaGetErrorString(code));
}

int device_count(std::string* why) {
  int count = 0;
  const cudaError_t code = cudaGetDeviceCount(&count);
  if (code != cudaSuccess) {
    // Clears the error, which is not sticky, so a later call may try again.
    cudaGetLastError();
    if (why) *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(code);
    return 0;
  }
  if (count == 0 && why) *why = "no CUDA device is present";
  return count;
}

void* DeviceAllocator::allocate(size_t bytes) {
  void* ptr = nullptr;
  // At least one byte, so a zero-size tensor still has a distinct valid pointer.
  if (cudaMallocAsync(&ptr, bytes == 0 ? 1 : bytes, stream_) != cudaSuccess) {
    cudaGetLastError();
    throw std::bad_alloc();
  }
  note_allocate(bytes);
  return ptr;
}

void DeviceAllocator::release(void* ptr, size_t bytes) {
  note_release(bytes);
  // At exit the runtime may be gone before the last tensors; there is nothing left to free then.
  if (cudaFreeAsync(ptr, stream_) != cudaSuccess) cudaGetLastError();
}

void DeviceAllocator::fill(void* ptr, int byte, size_t bytes) {
  check(cudaMemsetAsync(ptr, byte, bytes, stream_), "cudaMemsetAsync");
}

Device::Device() {
  std::string why;
  if (device_count(&why) == 0)
    throw Fail("CUDAExecutionProvider: no usable CUDA device (" + why + ")");
  check(cudaSetDevice(id_), "cudaSetDevice");
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  allocator_ = std::make_unique<DeviceAllocator>(stream_);
}

Device& Device::get() {
  // Never destroyed: device tensors held by static objects may be released after main returns.
  static Device* device = new Device();
  return *device;
}

void Device::synchronize() const { check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

distributed::Communicator& Device::communicator() {
  std::lock_guard lock(mutex_);
  if (!communicator_) {
    // NCCL runs on a stream of its own (its library may bring another copy of the CUDA runtime
    // than graft's); kernels synchronize this device's stream before they hand it buffers, and
    // each NCCL call returns once its collective has completed.
    communicator_ = distributed::make_nccl_communicator(distributed::world(), id_, nullptr);
  }
  return *communicator_;
}

}  // namespace graft::cuda
