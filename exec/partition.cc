#include "exec/partition.h"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>

#include "exec/tensor_proto.h"
#include "ir/model.h"
#include "ir/names.h"
#include "onnx/onnx_pb.h"

namespace graft {
namespace {

constexpr const char* kCopyDomain = names::kDomain;
// An initializer of at most this many elements may be read by shape arithmetic moved to the
// host (onnxruntime's bound for the same choice): a larger one stays where a device reads it.
constexpr int64_t kSmallInitializer = 100;

bool is_op(const ir::Node& n, const char* op_type) {
  return n.domain == kCopyDomain && n.op_type == op_type;
}

bool contains(const std::vector<int>& list, size_t i) {
  return std::find(list.begin(), list.end(), static_cast<int>(i)) != list.end();
}

// Whether `value` is an int32, int64 or bool tensor: a value of shape arithmetic.
bool integer_value(const ir::Graph& graph, const std::string& value) {
  const onnx::TypeProto* type = graph.type_of(value);
  if (type == nullptr || !type->has_tensor_type()) return false;
  const DType dtype = elem_dtype_of(*type);
  return dtype == DType::Int32 || dtype == DType::Int64 || dtype == DType::Bool;
}

bool integer_outputs(const ir::Graph& graph, const ir::Node& n) {
  bool any = false;
  for (const auto& out : n.outputs) {
    if (out.empty()) continue;
    if (!integer_value(graph, out)) return false;
    any = true;
  }
  return any;
}

// Whether a value no node of `graph` makes (a graph input, an initializer, an outer-scope value)
// may be read on the host by shape arithmetic: all but the large initializers.
bool host_source(const ir::Graph& graph, const std::string& name) {
  const onnx::TensorProto* init = graph.find_initializer(name);
  if (init == nullptr || graph.is_graph_input(name)) return true;
  int64_t count = 1;
  for (int64_t d : init->dims()) count *= d;
  return count <= kSmallInitializer;
}

// onnxruntime's CPU-preferred nodes: shape arithmetic that a device provider claimed (nodes whose
// outputs are all int32, int64 or bool) goes to the first host provider that can run it when
// everything it reads can be read on the host (values host nodes make, graph inputs, small
// initializers, inputs the host kernel reads only the shape of) and it either reads an integer
// value a host node made (a Shape's, a Size's) or feeds a device kernel's host input, directly or
// through other such nodes. A shape then never goes to the device and back. Decided from the
// graph alone, so the graph with its copies inserted partitions the same way.
void keep_shape_arithmetic_on_host(const ir::Model& model, const ir::Graph& graph,
                                   const std::vector<const ExecutionProvider*>& providers,
                                   const std::vector<std::vector<bool>>& claims,
                                   std::vector<int>& owner) {
  const size_t n = graph.nodes.size();
  auto host_provider = [&](int p) {
    return p >= 0 && providers[static_cast<size_t>(p)]->allocator().on_host();
  };
  if (std::all_of(owner.begin(), owner.end(), [&](int p) { return p < 0 || host_provider(p); }))
    return;
  auto kernel = [&](size_t i, int p) -> const KernelDef* {
    if (p < 0) return nullptr;
    return find_kernel(providers[static_cast<size_t>(p)]->registry(), model, graph,
                       *graph.nodes[i]);
  };
  std::map<std::string, size_t> producer;
  // Per value, the nodes that read it and at which input.
  std::map<std::string, std::vector<std::pair<size_t, size_t>>> readers;
  for (size_t i = 0; i < n; ++i) {
    const ir::Node& node = *graph.nodes[i];
    for (const auto& out : node.outputs) {
      if (!out.empty()) producer[out] = i;
    }
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      if (!node.inputs[k].empty()) readers[node.inputs[k]].emplace_back(i, k);
    }
  }

  std::vector<int> host(n, -1);  // the host provider a candidate would move to
  std::vector<bool> eligible(n, false), moved(n, false);
  auto made_on_host = [&](size_t p) { return moved[p] || host_provider(owner[p]); };
  for (size_t i = 0; i < n; ++i) {
    const ir::Node& node = *graph.nodes[i];
    if (owner[i] < 0 || host_provider(owner[i]) || node.domain == kCopyDomain ||
        !integer_outputs(graph, node))
      continue;
    for (size_t p = 0; p < providers.size() && host[i] < 0; ++p) {
      if (claims[p][i] && host_provider(static_cast<int>(p))) host[i] = static_cast<int>(p);
    }
    if (host[i] < 0) continue;
    const KernelDef* def = kernel(i, host[i]);
    bool readable = def != nullptr;
    bool reads_host_value = false;
    for (size_t k = 0; k < node.inputs.size() && readable; ++k) {
      const std::string& in = node.inputs[k];
      if (in.empty() || contains(def->metadata_inputs, k)) continue;
      auto p = producer.find(in);
      if (p == producer.end()) {
        readable = host_source(graph, in);
      } else if (made_on_host(p->second)) {
        reads_host_value = reads_host_value || integer_value(graph, in);
      } else {
        readable = eligible[p->second];
      }
    }
    for (const auto& attr : node.attributes) readable = readable && attr.graphs.empty();
    eligible[i] = readable;
    moved[i] = readable && reads_host_value;
  }
  // Backwards, so a node's readers are decided before it.
  for (size_t i = n; i-- > 0;) {
    if (!eligible[i] || moved[i]) continue;
    for (const auto& out : graph.nodes[i]->outputs) {
      auto it = readers.find(out);
      if (out.empty() || it == readers.end()) continue;
      for (const auto& [r, k] : it->second) {
        const KernelDef* def = moved[r] || host_provider(owner[r]) ? nullptr : kernel(r, owner[r]);
        moved[i] = moved[i] || moved[r] || (def && contains(def->host_inputs, k));
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (moved[i]) owner[i] = host[i];
  }
}

}  // namespace

std::vector<int> partition(const ir::Model& model, const ir::Graph& graph,
                           const std::vector<const ExecutionProvider*>& providers) {
  const size_t n = graph.nodes.size();
  std::vector<std::vector<bool>> claims(providers.size(), std::vector<bool>(n, false));
  std::vector<int> owner(n, -1);
  for (size_t p = 0; p < providers.size(); ++p) {
    for (size_t i : providers[p]->capability(model, graph)) {
      if (i >= n) continue;
      claims[p][i] = true;
      if (owner[i] < 0) owner[i] = static_cast<int>(p);
    }
  }
  keep_shape_arithmetic_on_host(model, graph, providers, claims, owner);
  return owner;
}

namespace {

// The model-local function of a copy op: Y = Identity(X).
std::shared_ptr<onnx::FunctionProto> copy_function(const std::string& op_type, int64_t opset) {
  auto f = std::make_shared<onnx::FunctionProto>();
  f->set_name(op_type);
  f->set_domain(kCopyDomain);
  f->set_doc_string(
      "graft's copy between host and device memory (exec/partition.h): the value "
      "itself, unchanged.");
  auto* imp = f->add_opset_import();
  imp->set_domain("");
  imp->set_version(opset);
  f->add_input("X");
  f->add_output("Y");
  auto* node = f->add_node();
  node->set_op_type("Identity");
  node->add_input("X");
  node->add_output("Y");
  return f;
}

// Inserts the copies of one graph (values from enclosing graphs are host memory by then), then of
// its nested graphs; returns how many it added.
size_t insert_copies(const ir::Model& model, ir::Graph& graph,
                     const std::vector<const ExecutionProvider*>& providers) {
  // -1: host memory; else the index of the device provider whose memory holds the value.
  auto place_of = [&](int owner) {
    return owner >= 0 && !providers[static_cast<size_t>(owner)]->allocator().on_host() ? owner : -1;
  };
  const std::vector<int> owners = partition(model, graph, providers);
  // The kernel each node runs, for the inputs it reads on the host or only the shape of.
  std::vector<const KernelDef*> kernels(graph.nodes.size(), nullptr);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (owners[i] >= 0)
      kernels[i] = find_kernel(providers[static_cast<size_t>(owners[i])]->registry(), model, graph,
                               *graph.nodes[i]);
  }
  // Where each node expects its inputs and leaves its outputs.
  auto input_place = [&](size_t i) {
    return is_op(*graph.nodes[i], "MemcpyFromHost") ? -1 : place_of(owners[i]);
  };
  auto output_place = [&](size_t i) {
    return is_op(*graph.nodes[i], "MemcpyToHost") ? -1 : place_of(owners[i]);
  };
  std::map<std::string, int> location;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const auto& out : graph.nodes[i]->outputs) {
      if (!out.empty()) location[out] = output_place(i);
    }
  }
  auto where = [&](const std::string& name) {
    auto it = location.find(name);
    return it == location.end() ? -1 : it->second;
  };
  auto declare = [&](const std::string& name, const std::string& like) {
    if (const onnx::TypeProto* t = graph.type_of(like))
      graph.value_info[name] = ir::ValueInfo{name, std::make_shared<onnx::TypeProto>(*t), ""};
  };
  auto device_name = [&](const std::string& name, int place) {
    return name + "@" + providers[static_cast<size_t>(place)]->name();
  };

  // A graph output made on a device: the device value takes another name, and a copy hands it
  // back under the output's name.
  std::vector<std::pair<std::string, std::string>> returned;  // (output, device value)
  for (auto& out : graph.outputs) {
    const int place = where(out.name);
    if (place < 0) continue;
    const std::string renamed = device_name(out.name, place);
    for (auto& node : graph.nodes) {
      for (auto& o : node->outputs) {
        if (o == out.name) o = renamed;
      }
      for (auto& in : node->inputs) {
        if (in == out.name) in = renamed;
      }
    }
    declare(renamed, out.name);
    location[renamed] = place;
    returned.emplace_back(out.name, renamed);
  }

  size_t added = 0;
  std::vector<std::unique_ptr<ir::Node>> nodes;
  // The name under which `name`'s value is at `to`, copying it there (through the host between
  // two devices) before the node being placed.
  std::map<std::pair<std::string, int>, std::string> copies;
  std::function<std::string(const std::string&, int)> at = [&](const std::string& name,
                                                               int to) -> std::string {
    const int from = where(name);
    if (from == to) return name;
    if (from >= 0 && to >= 0) return at(at(name, -1), to);
    auto cached = copies.find({name, to});
    if (cached != copies.end()) return cached->second;
    // A graph output's device value comes back under the output's name, once.
    std::string copy = to >= 0 ? device_name(name, to) : name + "@host";
    for (const auto& [output, device_value] : returned) {
      if (to < 0 && device_value == name) copy = output;
    }
    auto node = std::make_unique<ir::Node>();
    node->op_type = to >= 0 ? "MemcpyFromHost" : "MemcpyToHost";
    node->domain = kCopyDomain;
    node->name = copy + "/" + node->op_type;
    node->inputs = {name};
    node->outputs = {copy};
    declare(copy, name);
    nodes.push_back(std::move(node));
    ++added;
    location[copy] = to;
    copies[{name, to}] = copy;
    return copy;
  };
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    ir::Node& node = *graph.nodes[i];
    const KernelDef* kernel = kernels[i];
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      std::string& in = node.inputs[k];
      // An input read only for its shape is read where it lives.
      if (in.empty() || (kernel && contains(kernel->metadata_inputs, k))) continue;
      const bool host_input = kernel && input_place(i) >= 0 && contains(kernel->host_inputs, k);
      in = at(in, host_input ? -1 : input_place(i));
    }
    // Nested graphs read the enclosing values in host memory, then place their own nodes.
    for (auto& attr : node.attributes) {
      for (auto& sub : attr.graphs) {
        for (const auto& name : sub->free_variables()) {
          if (where(name) >= 0) sub->replace_uses(name, at(name, -1));
        }
        added += insert_copies(model, *sub, providers);
      }
    }
    nodes.push_back(std::move(graph.nodes[i]));
  }
  for (const auto& [output, device_value] : returned) at(device_value, -1);
  graph.nodes = std::move(nodes);
  graph.renumber();
  return added;
}

}  // namespace

size_t insert_device_copies(ir::Model& model,
                            const std::vector<const ExecutionProvider*>& providers) {
  bool any_device = false;
  for (const auto* p : providers) any_device = any_device || !p->allocator().on_host();
  if (!any_device) return 0;
  const size_t added = insert_copies(model, model.graph, providers);
  if (added > 0) {
    if (model.opset(kCopyDomain) == 0) model.opset_imports[kCopyDomain] = 1;
    for (const char* op : {"MemcpyFromHost", "MemcpyToHost"}) {
      bool declared = false;
      for (const auto& f : model.functions)
        declared = declared || (f->domain() == kCopyDomain && f->name() == op);
      if (!declared) model.functions.push_back(copy_function(op, model.opset("")));
    }
  }
  return added;
}

}  // namespace graft
