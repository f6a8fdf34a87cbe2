// The CUDA device graft's CUDA provider runs on: one stream per process on which every kernel of
// the provider is enqueued in graph order, an allocator of device memory ordered on that stream,
// and the NCCL communicator its collective kernels use, made on first use over the process's
// distributed::world().
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <string>

#include "distributed/communicator.h"
#include "exec/allocator.h"

namespace graft::cuda {

// Throws Fail "<what>: <CUDA's error string>" unless `code` is cudaSuccess.
void check(cudaError_t code, const std::string& what);

// The number of CUDA devices this process can use; 0 when there is none or no driver, with
// the reason in `why` when given.
int device_count(std::string* why = nullptr);

// Device memory, allocated and freed in order on the device's stream (cudaMallocAsync).
class DeviceAllocator final : public Allocator {
 public:
  explicit DeviceAllocator(cudaStream_t stream) : stream_(stream) {}
  const char* name() const override { return "CUDA"; }
  void* allocate(size_t bytes) override;
  void release(void* ptr, size_t bytes) override;
  bool on_host() const override { return false; }
  void fill(void* ptr, int byte, size_t bytes) override;

 private:
  cudaStream_t stream_;
};

class Device {
 public:
  // The process's device: CUDA device 0 (the launcher chooses which GPU a rank sees with
  // CUDA_VISIBLE_DEVICES), made on first use. Throws Fail naming the reason when no device can
  // be used.
  static Device& get();
  int id() const { return id_; }
  cudaStream_t stream() const { return stream_; }
  Allocator& allocator() { return *allocator_; }
  // Waits for everything enqueued on the stream.
  void synchronize() const;
  // The NCCL communicator over the ranks of distributed::world(), on this device.
  distributed::Communicator& communicator();

 private:
  Device();
  int id_ = 0;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<DeviceAllocator> allocator_;
  std::mutex mutex_;
  std::unique_ptr<distributed::Communicator> communicator_;
};

}  // namespace graft::cuda
