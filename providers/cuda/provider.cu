// The CUDA execution provider: claims the nodes its kernel registry can run (the collectives and
// the host/device copies); insert_device_copies moves values in and out of device memory around
// them.
// A session uses it only where the user names it (providers=["CUDAExecutionProvider", ...]).
#include "exec/provider.h"
#include "ir/model.h"
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/device.h"
#include "providers/cuda/kernels.h"

namespace graft::cuda {
namespace {

const KernelRegistry& cuda_kernel_registry() {
  static const KernelRegistry registry = [] {
    KernelRegistry reg;
    register_memcpy_kernels(reg);
    register_collective_kernels(reg);
    register_elementwise_kernels(reg);
    return reg;
  }();
  return registry;
}

class CudaProvider : public BackendProvider<CudaBackend> {
 public:
  CudaProvider() : device_(Device::get()), backend_(device_.stream(), device_.allocator()) {}
  const char* name() const override { return "CUDAExecutionProvider"; }
  std::vector<size_t> capability(const ir::Model& model, const ir::Graph& graph) const override {
    return supported_nodes(registry(), model, graph);
  }
  const KernelRegistry& registry() const override { return cuda_kernel_registry(); }
  Allocator& allocator() const override { return device_.allocator(); }
  CudaBackend& backend() const override { return backend_; }

 private:
  Device& device_;
  mutable CudaBackend backend_;
};

std::unique_ptr<ExecutionProvider> make_cuda_provider(const ProviderOptions& options) {
  check_provider_options("CUDAExecutionProvider", options, {});
  return std::make_unique<CudaProvider>();
}

bool cuda_device_present() { return device_count() > 0; }

struct CudaProviderRegistrar {
  CudaProviderRegistrar() {
    register_provider("CUDAExecutionProvider", 50, &make_cuda_provider, /*by_default=*/false,
                      &cuda_device_present);
  }
} cuda_provider_registrar;

}  // namespace
}  // namespace graft::cuda
