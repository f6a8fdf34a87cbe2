#include "providers/cuda/pinned.h"

#include <cuda_runtime.h>

#include "providers/cuda/device.h"

namespace graft::cuda {
namespace {

class PinnedSource final : public MemorySource {
 public:
  void* allocate(size_t bytes) override {
    void* ptr = nullptr;
    // Portable: usable by the copies of every device, whichever was current here.
    const cudaError_t code = cudaHostAlloc(&ptr, bytes, cudaHostAllocPortable);
    if (code == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      return nullptr;
    }
    check(code, "cudaHostAlloc of " + std::to_string(bytes) + " bytes");
    return ptr;
  }
  void release(void* ptr, size_t) override {
    if (cudaFreeHost(ptr) != cudaSuccess) cudaGetLastError();
  }
  // A cached block is free only once the events of the streams that used it have completed, so no
  // device work can still reach it.
  void synchronize() override {}
  void* record_event(void* stream) override {
    return record_stream_event(static_cast<cudaStream_t>(stream));
  }
  bool event_done(void* event) override { return stream_event_done(event); }
  void destroy_event(void* event) override { destroy_stream_event(event); }
};

}  // namespace

StreamAllocator& pinned_memory() {
  // Never destroyed: host tensors in pinned memory may be released after main returns.
  static auto* source = new PinnedSource();
  static auto* cache = new CachingAllocator(*source, "CUDA pinned host memory");
  static auto* memory = new StreamAllocator(*cache, nullptr, "CudaPinned", /*on_host=*/true);
  return *memory;
}

}  // namespace graft::cuda
