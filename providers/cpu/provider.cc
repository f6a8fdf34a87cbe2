// The CPU execution provider: claims every node its kernel registry can run.
#include "providers/cpu/provider.h"

#include "exec/error.h"
#include "exec/kernel.h"
#include "exec/provider.h"
#include "ir/model.h"

namespace graft {
namespace {

constexpr const char* kInt8Exact = "int8_exact";

class CpuProvider : public ExecutionProvider {
 public:
  explicit CpuProvider(bool int8_exact) : int8_exact_(int8_exact) {}
  const char* name() const override { return "CPUExecutionProvider"; }
  std::vector<size_t> capability(const ir::Model& model, const ir::Graph& graph) const override {
    return supported_nodes(registry(), model, graph);
  }
  const KernelRegistry& registry() const override { return cpu_kernel_registry(); }
  Allocator& allocator() const override { return cpu_allocator(); }
  bool int8_exact() const { return int8_exact_; }

 private:
  bool int8_exact_;
};

std::unique_ptr<ExecutionProvider> make_cpu_provider(const ProviderOptions& options) {
  check_provider_options("CPUExecutionProvider", options, {kInt8Exact});
  bool exact = false;
  if (auto it = options.find(kInt8Exact); it != options.end()) {
    if (it->second != "0" && it->second != "1")
      throw InvalidArgument(std::string("CPUExecutionProvider: provider option '") + kInt8Exact +
                            "' must be \"0\" or \"1\", got \"" + it->second + "\"");
    exact = it->second == "1";
  }
  return std::make_unique<CpuProvider>(exact);
}

struct CpuProviderRegistrar {
  CpuProviderRegistrar() { register_provider("CPUExecutionProvider", 100, &make_cpu_provider); }
} cpu_provider_registrar;

}  // namespace

namespace cpu {

bool int8_exact(const KernelInfo& info) {
  const auto* provider = dynamic_cast<const CpuProvider*>(info.provider());
  return provider == nullptr || provider->int8_exact();
}

}  // namespace cpu
}  // namespace graft
