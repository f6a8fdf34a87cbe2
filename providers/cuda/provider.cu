// The CUDA execution provider: claims the nodes its kernel registry can run; insert_device_copies
// moves values in and out of device memory around them. Provider options (onnxruntime's names):
// device_id, gpu_mem_limit, use_tf32 (device.h, parse_options).
// A session uses it only where the user names it (providers=["CUDAExecutionProvider", ...]).
#include "exec/error.h"
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
    register_tensor_kernels(reg);
    register_gather_kernels(reg);
    register_matmul_kernels(reg);
    register_reduce_kernels(reg);
    register_softmax_kernels(reg);
    register_normalization_kernels(reg);
    register_loss_kernels(reg);
    register_training_kernels(reg);
    register_optimizer_kernels(reg);
    register_dropout_kernels(reg);
    register_fused_kernels(reg);
    register_conv_kernels(reg);
    register_pool_kernels(reg);
    register_batch_norm_kernels(reg);
    return reg;
  }();
  return registry;
}

// One per session: its own compute and copy streams on the device its options choose, with the
// compute stream's share of the device's caching allocator.
class CudaProvider : public BackendProvider<CudaBackend>, public StreamProvider {
 public:
  explicit CudaProvider(const CudaOptions& options)
      : device_(Device::get(options.device_id)),
        streams_(device_.acquire_streams(options.memory_limit)),
        backend_(device_.id(), streams_.compute(), streams_.memory(), options.use_tf32) {
    // The session's kernels are built on this thread next.
    device_.make_current();
  }
  ~CudaProvider() override { device_.release_streams(streams_); }
  CudaProvider(const CudaProvider&) = delete;
  CudaProvider& operator=(const CudaProvider&) = delete;

  const char* name() const override { return "CUDAExecutionProvider"; }
  std::vector<size_t> capability(const ir::Model& model, const ir::Graph& graph) const override {
    return supported_nodes(registry(), model, graph);
  }
  const KernelRegistry& registry() const override { return cuda_kernel_registry(); }
  Allocator& allocator() const override { return streams_.memory(); }
  CudaBackend& backend() const override { return backend_; }
  Streams& streams() const override { return streams_; }

 private:
  Device& device_;
  Streams& streams_;
  mutable CudaBackend backend_;
};

std::unique_ptr<ExecutionProvider> make_cuda_provider(const ProviderOptions& options) {
  std::string why;
  const int count = device_count(&why);
  if (count == 0) throw Fail("CUDAExecutionProvider: no usable CUDA device (" + why + ")");
  return std::make_unique<CudaProvider>(parse_options(options, count));
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
