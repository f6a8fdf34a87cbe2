#include "exec/partition.h"

#include <functional>
#include <map>
#include <memory>

#include "ir/model.h"
#include "ir/names.h"
#include "onnx/onnx_pb.h"

namespace graft {

std::vector<int> partition(const ir::Model& model, const ir::Graph& graph,
                           const std::vector<const ExecutionProvider*>& providers) {
  std::vector<int> owner(graph.nodes.size(), -1);
  for (size_t p = 0; p < providers.size(); ++p) {
    for (size_t i : providers[p]->capability(model, graph)) {
      if (i < owner.size() && owner[i] < 0) owner[i] = static_cast<int>(p);
    }
  }
  return owner;
}

namespace {

constexpr const char* kCopyDomain = names::kDomain;

bool is_op(const ir::Node& n, const char* op_type) {
  return n.domain == kCopyDomain && n.op_type == op_type;
}

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

}  // namespace

namespace {

// Inserts the copies of one graph (values from enclosing graphs are host memory by then), then of
// its nested graphs; returns how many it added.
size_t insert_copies(const ir::Model& model, ir::Graph& graph,
                     const std::vector<const ExecutionProvider*>& providers) {
  // -1: host memory; else the index of the device provider whose memory holds the value.
  auto place_of = [&](int owner) {
    return owner >= 0 && !providers[static_cast<size_t>(owner)]->allocator().on_host() ? owner : -1;
  };
  const std::vector<int> owners = partition(model, graph, providers);
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
    const int want = input_place(i);
    for (auto& in : node.inputs) {
      if (!in.empty()) in = at(in, want);
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
