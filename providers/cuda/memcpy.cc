// com.graft MemcpyFromHost (host tensor -> device tensor) and MemcpyToHost (device -> host), the
// copies insert_device_copies puts where a value crosses between host and device memory. Tensors
// only. Both run on the session's copy stream through pinned memory, ordered against the compute
// stream by events: a copy to the device starts once the compute stream's earlier work is done
// with the output's block, and the compute stream waits for it before the consumer runs; a copy to
// the host waits for the compute stream's work so far and is complete when the kernel returns.
#include <cstring>

#include "ir/names.h"
#include "providers/cuda/device.h"
#include "providers/cuda/kernels.h"
#include "providers/cuda/pinned.h"

namespace graft::cuda {
namespace {

class MemcpyFromHost final : public Kernel {
 public:
  explicit MemcpyFromHost(const KernelInfo& info) : streams_(streams_of(info)) {}
  void compute(KernelContext& ctx) override {
    if (!ctx.input_value(0).is_tensor()) ctx.fail("only tensors can be copied to a CUDA device");
    const Tensor& x = ctx.input(0);
    Device& device = streams_.device();
    device.make_current();
    if (x.buffer() && !x.buffer()->on_host()) {
      const auto* memory = dynamic_cast<const DeviceMemory*>(x.buffer()->allocator());
      if (memory == nullptr || &memory->cache() != &device.memory()) {
        ctx.fail(std::string("input is in ") + x.buffer()->allocator()->name() +
                 " memory, neither host memory nor CUDA device " + std::to_string(device.id()) +
                 "'s");
      }
      // Already in this device's memory: handed over as it is, once the stream that made it
      // (another session's) is done with it.
      if (memory->cuda_stream() != streams_.compute())
        streams_.order(memory->cuda_stream(), streams_.compute());
      ctx.set_output(0, ctx.input_value(0));
      return;
    }
    if (x.dtype() == DType::String) ctx.fail("string tensors cannot be copied to a CUDA device");
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    const size_t bytes = x.nbytes();
    if (bytes == 0) return;
    // Staged even from pinned memory: the caller may write into x as soon as the run returns,
    // before the copy engine has read it.
    StreamAllocator& pinned = pinned_memory();
    const Tensor staging = Tensor::empty(DType::UInt8, {static_cast<int64_t>(bytes)}, pinned);
    std::memcpy(staging.raw(), x.raw(), bytes);
    // The staging block goes back to the pinned cache only after the copy has read it.
    pinned.cache().record_use(staging.raw(), streams_.copy());
    streams_.order(streams_.compute(), streams_.copy());
    check(cudaMemcpyAsync(y.raw(), staging.raw(), bytes, cudaMemcpyHostToDevice, streams_.copy()),
          ctx.describe() + ": cudaMemcpyAsync");
    streams_.order(streams_.copy(), streams_.compute());
  }

 private:
  Streams& streams_;
};

class MemcpyToHost final : public Kernel {
 public:
  explicit MemcpyToHost(const KernelInfo& info) : streams_(streams_of(info)) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (!x.buffer() || x.buffer()->on_host()) {
      ctx.set_output(0, ctx.input_value(0));
      return;
    }
    streams_.device().make_current();
    // Pinned, so the copy engine writes it directly; the caller reads it as host memory.
    Tensor y = Tensor::empty(x.dtype(), x.shape(), pinned_memory());
    if (x.nbytes() > 0) {
      streams_.order(streams_.compute(), streams_.copy());
      check(cudaMemcpyAsync(y.raw(), x.raw(), x.nbytes(), cudaMemcpyDeviceToHost, streams_.copy()),
            ctx.describe() + ": cudaMemcpyAsync");
      check(cudaStreamSynchronize(streams_.copy()), ctx.describe() + ": copying to the host");
    }
    ctx.set_output(0, Value(std::move(y)));
  }

 private:
  Streams& streams_;
};

}  // namespace

void register_memcpy_kernels(KernelRegistry& reg) {
  reg.add({names::kDomain, "MemcpyFromHost", 1, 1 << 30, {}, 0, make<MemcpyFromHost>});
  reg.add({names::kDomain, "MemcpyToHost", 1, 1 << 30, {}, 0, make<MemcpyToHost>});
}

}  // namespace graft::cuda
