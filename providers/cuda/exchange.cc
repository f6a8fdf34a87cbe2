// The CUDA devices' DeviceExchange (exec/device_exchange.h): tensors made outside a session live in
// device memory ordered on the legacy default stream, the stream DLPack's producers synchronize
// with when asked for stream 1 and PyTorch's default stream. A session's MemcpyFromHost orders its
// compute stream after that stream's work before it takes such a tensor as a feed.
#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "exec/device_exchange.h"
#include "exec/error.h"
#include "providers/cuda/device.h"

namespace graft::cuda {
namespace {

constexpr int64_t kLegacyStream = 1;

// Device `id`'s memory on the legacy default stream, twice: `allocated` hands out the blocks of
// tensors graft makes there, `wrapped` is what tensors over another library's memory report (it
// never allocates). Both are DeviceMemory, which a session's MemcpyFromHost takes as they are.
struct ExchangeMemory {
  DeviceMemory* allocated;
  DeviceMemory* wrapped;
};

class CudaExchange final : public DeviceExchange {
 public:
  Allocator& memory(int id) override { return *of(id).allocated; }

  Tensor wrap(void* data, DType dtype, const Shape& shape, int id,
              std::shared_ptr<void> keep_alive) override {
    auto buffer = std::make_shared<Buffer>(data, *of(id).wrapped, std::move(keep_alive));
    return Tensor(dtype, shape, std::move(buffer));
  }

  int64_t stream(int) override { return kLegacyStream; }

  void hand_over(const Tensor& tensor, int64_t consumer) override {
    const DeviceMemory& from = memory_of(tensor);
    auto* to = reinterpret_cast<cudaStream_t>(consumer);
    if (to == from.cuda_stream()) return;
    const DeviceGuard guard(from.device().id);
    void* event = record_stream_event(from.cuda_stream());
    if (event != nullptr) {
      const cudaError_t code = cudaStreamWaitEvent(to, static_cast<cudaEvent_t>(event), 0);
      destroy_stream_event(event);
      check(code, "ordering a CUDA stream after a graft tensor's work");
    }
    // As torch's record_stream: the block is reused only after the consumer's work by then.
    if (!is_wrapped(from)) from.cache().record_use(tensor.raw(), to);
  }

  void copy_to(void* dst, const Tensor& src) override {
    if (src.nbytes() == 0) return;
    cudaStream_t stream = nullptr;
    int device = 0;
    if (src.on_host()) {
      check(cudaGetDevice(&device), "cudaGetDevice");
    } else {
      const DeviceMemory& from = memory_of(src);
      stream = from.cuda_stream();
      device = from.device().id;
    }
    const DeviceGuard guard(device);
    check(cudaMemcpyAsync(dst, src.raw(), src.nbytes(), cudaMemcpyDefault, stream),
          "copying into CUDA device memory");
    check(cudaStreamSynchronize(stream), "copying into CUDA device memory");
  }

  void synchronize(const Tensor& tensor) override {
    if (tensor.on_host()) return;
    const DeviceMemory& memory = memory_of(tensor);
    const DeviceGuard guard(memory.device().id);
    check(cudaStreamSynchronize(memory.cuda_stream()), "synchronizing a CUDA stream");
  }

 private:
  ExchangeMemory of(int id) {
    Device& device = Device::get(id);
    std::lock_guard lock(mutex_);
    if (devices_.size() <= static_cast<size_t>(id)) devices_.resize(static_cast<size_t>(id) + 1);
    auto& [allocated, wrapped] = devices_[static_cast<size_t>(id)];
    if (!allocated) {
      allocated = std::make_unique<DeviceMemory>(id, device.memory(), nullptr);
      wrapped = std::make_unique<DeviceMemory>(id, device.memory(), nullptr);
    }
    return {allocated.get(), wrapped.get()};
  }

  bool is_wrapped(const DeviceMemory& memory) {
    const int id = memory.device().id;
    std::lock_guard lock(mutex_);
    return static_cast<size_t>(id) < devices_.size() &&
           devices_[static_cast<size_t>(id)].second.get() == &memory;
  }

  static const DeviceMemory& memory_of(const Tensor& tensor) {
    const Allocator* allocator = tensor.buffer() ? tensor.buffer()->allocator() : nullptr;
    const auto* memory = dynamic_cast<const DeviceMemory*>(allocator);
    if (memory == nullptr) {
      throw InvalidArgument(std::string("a tensor in ") + (allocator ? allocator->name() : "host") +
                            " memory is not in CUDA device memory");
    }
    return *memory;
  }

  std::mutex mutex_;
  // By device; never shrinks, and tensors hold the allocators.
  std::vector<std::pair<std::unique_ptr<DeviceMemory>, std::unique_ptr<DeviceMemory>>> devices_;
};

struct CudaExchangeRegistrar {
  CudaExchangeRegistrar() {
    // Never destroyed: device tensors held by static objects may be released after main returns.
    static auto* exchange = new CudaExchange();
    register_device_exchange("cuda", *exchange);
  }
} cuda_exchange_registrar;

}  // namespace
}  // namespace graft::cuda
