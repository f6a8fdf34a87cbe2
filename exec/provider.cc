#include "exec/provider.h"

#include <algorithm>

#include "exec/tensor_proto.h"
#include "ir/model.h"
#include "ir/schema.h"
#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"

namespace graft {
namespace {

struct ProviderEntry {
  std::string name;
  int rank;
  ProviderFactory factory;
  bool by_default;
  ProviderProbe probe;
};

std::vector<ProviderEntry>& provider_table() {
  static std::vector<ProviderEntry> table;
  return table;
}

}  // namespace

void register_provider(const std::string& name, int rank, ProviderFactory factory, bool by_default,
                       ProviderProbe probe) {
  provider_table().push_back({name, rank, factory, by_default, probe});
}

int since_version_of(const ir::Model& model, const ir::Node& n) {
  const int64_t opset = model.opset(n.domain);
  if (opset == 0) return 0;
  const onnx::OpSchema* schema = ir::find_schema(n.domain, n.op_type, opset);
  return schema ? schema->SinceVersion() : static_cast<int>(opset);
}

std::vector<DType> input_dtypes_of(const ir::Graph& graph, const ir::Node& n) {
  std::vector<DType> dtypes;
  dtypes.reserve(n.inputs.size());
  for (const auto& name : n.inputs) {
    const onnx::TypeProto* type = name.empty() ? nullptr : graph.type_of(name);
    const onnx::TensorProto* init = name.empty() ? nullptr : graph.find_initializer(name);
    dtypes.push_back(type   ? elem_dtype_of(*type)
                     : init ? static_cast<DType>(init->data_type())
                            : DType::Undefined);
  }
  return dtypes;
}

const KernelDef* find_kernel(const KernelRegistry& registry, const ir::Model& model,
                             const ir::Graph& graph, const ir::Node& n) {
  const int since = since_version_of(model, n);
  if (since == 0) return nullptr;
  return registry.find(n.domain, n.op_type, since, input_dtypes_of(graph, n), &n);
}

bool registry_supports(const KernelRegistry& registry, const ir::Model& model,
                       const ir::Graph& graph, const ir::Node& n) {
  return find_kernel(registry, model, graph, n) != nullptr;
}

namespace {

std::vector<std::string> providers_where(bool only_default) {
  auto table = provider_table();
  std::stable_sort(table.begin(), table.end(),
                   [](const auto& a, const auto& b) { return a.rank < b.rank; });
  std::vector<std::string> names;
  for (const auto& e : table) {
    if (only_default && !e.by_default) continue;
    if (e.probe && !e.probe()) continue;
    names.push_back(e.name);
  }
  return names;
}

}  // namespace

std::vector<size_t> supported_nodes(const KernelRegistry& registry, const ir::Model& model,
                                    const ir::Graph& graph) {
  std::vector<size_t> claimed;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (registry_supports(registry, model, graph, *graph.nodes[i])) claimed.push_back(i);
  }
  return claimed;
}

std::vector<std::string> available_providers() { return providers_where(false); }

std::vector<std::string> default_providers() { return providers_where(true); }

void check_provider_options(const std::string& provider, const ProviderOptions& options,
                            const std::vector<std::string>& known) {
  for (const auto& [key, value] : options) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string names;
    for (const auto& k : known) names += (names.empty() ? "" : ", ") + k;
    throw InvalidArgument(provider + ": unknown provider option '" + key + "' (it takes " +
                          (names.empty() ? std::string("none") : names) + ")");
  }
}

std::unique_ptr<ExecutionProvider> create_provider(const std::string& name,
                                                   const ProviderOptions& options) {
  for (const auto& e : provider_table()) {
    if (e.name == name) return e.factory(options);
  }
  if (name == "CUDAExecutionProvider") {
    throw NotImplemented("graft was built without CUDA: rebuild with -DGRAFT_USE_CUDA=ON");
  }
  std::string known;
  for (const auto& e : provider_table()) known += (known.empty() ? "" : ", ") + e.name;
  throw InvalidArgument("unknown execution provider '" + name + "' (this build has " + known + ")");
}

}  // namespace graft
