// The CPU execution provider: claims every node its kernel registry can run.
#include "exec/provider.h"
#include "ir/model.h"

namespace graft {
namespace {

class CpuProvider : public ExecutionProvider {
 public:
  const char* name() const override { return "CPUExecutionProvider"; }
  std::vector<size_t> capability(const ir::Model& model, const ir::Graph& graph) const override {
    return supported_nodes(registry(), model, graph);
  }
  const KernelRegistry& registry() const override { return cpu_kernel_registry(); }
  Allocator& allocator() const override { return cpu_allocator(); }
};

std::unique_ptr<ExecutionProvider> make_cpu_provider(const ProviderOptions& options) {
  check_provider_options("CPUExecutionProvider", options, {});
  return std::make_unique<CpuProvider>();
}

struct CpuProviderRegistrar {
  CpuProviderRegistrar() { register_provider("CPUExecutionProvider", 100, &make_cpu_provider); }
} cpu_provider_registrar;

}  // namespace
}  // namespace graft
