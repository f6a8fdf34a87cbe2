// ExecutionProvider: a device or library that claims the nodes it can run. The partitioner
// walks the user's provider list in order; each provider claims what it can among the nodes
// still unclaimed.
#pragma once

#include "ir/api.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "exec/allocator.h"
#include "exec/kernel.h"

namespace graft {

namespace ir {
class Graph;
class Model;
}  // namespace ir

class ExecutionProvider {
 public:
  virtual ~ExecutionProvider() = default;
  // The name users write: "CPUExecutionProvider", "CUDAExecutionProvider", ...
  virtual const char* name() const = 0;
  // Indices of `graph`'s nodes this provider can run (a kernel exists for the op, version and
  // known input types). Must not throw for unsupported nodes: it just leaves them out.
  virtual std::vector<size_t> capability(const ir::Model& model, const ir::Graph& graph) const = 0;
  // The registry this provider's kernels are created from.
  virtual const KernelRegistry& registry() const = 0;
  // Where this provider's kernels put their outputs.
  virtual Allocator& allocator() const = 0;
};

// Settings of one provider as the user gives them: onnxruntime's provider_options
// ({"device_id": "1"} for CUDA). A provider rejects a key it does not know with InvalidArgument.
using ProviderOptions = std::map<std::string, std::string>;

using ProviderFactory = std::unique_ptr<ExecutionProvider> (*)(const ProviderOptions& options);
// Whether a provider can run on this machine (a device is present); asked when the list of
// available providers is made, never at static-init time.
using ProviderProbe = bool (*)();
// Called by each provider built into graft, at static-init time. `rank` orders the preference
// (lower first). A provider with `by_default` false runs only where the user names it (the CUDA
// provider, which claims only some ops: a session asked for nothing keeps to the host). `probe`
// nullptr: always available.
GRAFT_API void register_provider(const std::string& name, int rank, ProviderFactory factory,
                                 bool by_default = true, ProviderProbe probe = nullptr);

// Providers compiled into this build that can run here, in preference order.
GRAFT_API std::vector<std::string> available_providers();
// The available providers a session uses when it is given none.
GRAFT_API std::vector<std::string> default_providers();
// Creates a provider by name with its options. Throws NotImplemented naming the provider and the
// build option when graft was built without it, InvalidArgument for an unknown name or option.
std::unique_ptr<ExecutionProvider> create_provider(const std::string& name,
                                                   const ProviderOptions& options = {});
// Throws InvalidArgument naming `provider` and the first key of `options` not in `known`.
GRAFT_API void check_provider_options(const std::string& provider, const ProviderOptions& options,
                                      const std::vector<std::string>& known);

// The since_version of the schema node `n` resolves to under the model's opset imports (the
// imported version for an op without a schema); 0 when the model imports no opset for its
// domain.
GRAFT_API int since_version_of(const ir::Model& model, const ir::Node& n);
// The element types of `n`'s inputs as `graph` declares or infers them (an initializer's own),
// Undefined where not known before running or for an omitted input.
GRAFT_API std::vector<DType> input_dtypes_of(const ir::Graph& graph, const ir::Node& n);
// The kernel of `registry` that runs node `n` of `graph`: KernelRegistry::find for its op,
// resolved schema version and known input types, among the kernels that accept it
// (KernelDef::accepts). nullptr when none.
GRAFT_API const KernelDef* find_kernel(const KernelRegistry& registry, const ir::Model& model,
                                       const ir::Graph& graph, const ir::Node& n);
// Whether `registry` has a kernel for node `n` of `graph` (find_kernel is not nullptr).
GRAFT_API bool registry_supports(const KernelRegistry& registry, const ir::Model& model,
                                 const ir::Graph& graph, const ir::Node& n);
// Indices of the nodes of `graph` that `registry` supports: the capability of a provider that
// claims whatever it has a kernel for.
GRAFT_API std::vector<size_t> supported_nodes(const KernelRegistry& registry,
                                              const ir::Model& model, const ir::Graph& graph);

}  // namespace graft
