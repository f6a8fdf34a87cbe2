// com.graft MemcpyFromHost (host tensor -> device tensor) and MemcpyToHost (device -> host), the
// copies insert_device_copies puts where a value crosses between host and device memory.
// Tensors only.
#include "ir/names.h"
#include "providers/cuda/device.h"
#include "providers/cuda/kernels.h"

namespace graft::cuda {
namespace {

class MemcpyFromHost final : public Kernel {
 public:
  explicit MemcpyFromHost(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    if (!ctx.input_value(0).is_tensor()) ctx.fail("only tensors can be copied to a CUDA device");
    const Tensor& x = ctx.input(0);
    if (x.dtype() == DType::String) ctx.fail("string tensors cannot be copied to a CUDA device");
    Device& device = Device::get();
    Tensor y = Tensor::empty(x.dtype(), x.shape(), device.allocator());
    // From pageable memory the call returns once the bytes are staged, so the host buffer may
    // be released afterwards.
    if (x.nbytes() > 0) {
      check(cudaMemcpyAsync(y.raw(), x.raw(), x.nbytes(), cudaMemcpyHostToDevice, device.stream()),
            ctx.describe() + ": cudaMemcpyAsync");
    }
    ctx.set_output(0, Value(std::move(y)));
  }
};

class MemcpyToHost final : public Kernel {
 public:
  explicit MemcpyToHost(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    Device& device = Device::get();
    if (x.nbytes() > 0) {
      check(cudaMemcpyAsync(y.raw(), x.raw(), x.nbytes(), cudaMemcpyDeviceToHost, device.stream()),
            ctx.describe() + ": cudaMemcpyAsync");
    }
    device.synchronize();
  }
};

}  // namespace

void register_memcpy_kernels(KernelRegistry& reg) {
  reg.add({names::kDomain, "MemcpyFromHost", 1, 1 << 30, {}, 0, make<MemcpyFromHost>});
  reg.add({names::kDomain, "MemcpyToHost", 1, 1 << 30, {}, 0, make<MemcpyToHost>});
}

}  // namespace graft::cuda
