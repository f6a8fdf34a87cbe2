#include <algorithm>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "ir/error.h"
#include "ir/model.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {

std::string canonical_domain(const std::string& domain) {
  return domain == "ai.onnx" ? std::string() : domain;
}

const Attribute* Node::find_attr(const std::string& attr_name) const {
  for (const auto& a : attributes) {
    if (a.name == attr_name) return &a;
  }
  return nullptr;
}

std::string Node::describe() const {
  std::string op = domain.empty() ? op_type : domain + "." + op_type;
  if (!name.empty()) return "[" + op + "] node '" + name + "'";
  return "[" + op + "] node #" + std::to_string(index);
}

Graph::Graph() = default;
Graph::~Graph() = default;
Graph::Graph(Graph&&) noexcept = default;
Graph& Graph::operator=(Graph&&) noexcept = default;

namespace {

Attribute attribute(const std::string& name, onnx::AttributeProto::AttributeType type) {
  Attribute a;
  a.name = name;
  a.proto = std::make_shared<onnx::AttributeProto>();
  a.proto->set_name(name);
  a.proto->set_type(type);
  return a;
}

}  // namespace

Attribute int_attribute(const std::string& name, int64_t value) {
  Attribute a = attribute(name, onnx::AttributeProto::INT);
  a.proto->set_i(value);
  return a;
}

Attribute ints_attribute(const std::string& name, const std::vector<int64_t>& values) {
  Attribute a = attribute(name, onnx::AttributeProto::INTS);
  for (int64_t v : values) a.proto->add_ints(v);
  return a;
}

Attribute string_attribute(const std::string& name, const std::string& value) {
  Attribute a = attribute(name, onnx::AttributeProto::STRING);
  a.proto->set_s(value);
  return a;
}

std::shared_ptr<onnx::TypeProto> tensor_type(const onnx::TensorProto& t) {
  auto type = std::make_shared<onnx::TypeProto>();
  type->mutable_tensor_type()->set_elem_type(t.data_type());
  auto* shape = type->mutable_tensor_type()->mutable_shape();
  for (int64_t d : t.dims()) shape->add_dim()->set_dim_value(d);
  return type;
}

Graph Graph::clone() const {
  Graph g;
  g.name = name;
  g.doc_string = doc_string;
  g.inputs = inputs;
  g.outputs = outputs;
  g.initializers = initializers;
  g.value_info = value_info;
  for (const auto& n : nodes) {
    auto copy = std::make_unique<Node>(*n);
    for (auto& a : copy->attributes) {
      for (auto& sub : a.graphs) sub = std::make_shared<Graph>(sub->clone());
      // A pass may edit the copy's attributes (compose a perm, flip a mode): each copy gets
      // protos of its own. Tensor values (Constant's, often large) stay shared; passes replace
      // them rather than edit them.
      if (a.proto && a.proto->type() != onnx::AttributeProto::TENSOR)
        a.proto = std::make_shared<onnx::AttributeProto>(*a.proto);
    }
    g.nodes.push_back(std::move(copy));
  }
  return g;
}

const onnx::TensorProto* Graph::find_initializer(const std::string& value) const {
  for (const auto& t : initializers) {
    if (t->name() == value) return t.get();
  }
  return nullptr;
}

bool Graph::is_graph_input(const std::string& value) const {
  return std::any_of(inputs.begin(), inputs.end(),
                     [&](const ValueInfo& v) { return v.name == value; });
}

bool Graph::is_graph_output(const std::string& value) const {
  return std::any_of(outputs.begin(), outputs.end(),
                     [&](const ValueInfo& v) { return v.name == value; });
}

Node* Graph::producer(const std::string& value) const {
  for (const auto& n : nodes) {
    if (std::find(n->outputs.begin(), n->outputs.end(), value) != n->outputs.end()) return n.get();
  }
  return nullptr;
}

std::vector<Node*> Graph::consumers(const std::string& value) const {
  std::vector<Node*> out;
  for (const auto& n : nodes) {
    bool reads = std::find(n->inputs.begin(), n->inputs.end(), value) != n->inputs.end();
    for (const auto& a : n->attributes) {
      for (const auto& g : a.graphs) {
        auto free = g->free_variables();
        reads = reads || std::find(free.begin(), free.end(), value) != free.end();
      }
    }
    if (reads) out.push_back(n.get());
  }
  return out;
}

const onnx::TypeProto* Graph::type_of(const std::string& value) const {
  for (const auto& v : inputs) {
    if (v.name == value && v.type) return v.type.get();
  }
  for (const auto& v : outputs) {
    if (v.name == value && v.type) return v.type.get();
  }
  auto it = value_info.find(value);
  if (it != value_info.end() && it->second.type) return it->second.type.get();
  return nullptr;
}

std::vector<std::string> Graph::free_variables() const {
  std::unordered_set<std::string> defined;
  for (const auto& v : inputs) defined.insert(v.name);
  for (const auto& t : initializers) defined.insert(t->name());
  for (const auto& n : nodes) {
    for (const auto& o : n->outputs) defined.insert(o);
  }
  std::vector<std::string> free;
  std::unordered_set<std::string> seen;
  auto note = [&](const std::string& name) {
    if (!name.empty() && !defined.count(name) && seen.insert(name).second) free.push_back(name);
  };
  for (const auto& n : nodes) {
    for (const auto& i : n->inputs) note(i);
    for (const auto& a : n->attributes) {
      for (const auto& g : a.graphs) {
        for (const auto& v : g->free_variables()) note(v);
      }
    }
  }
  for (const auto& o : outputs) note(o.name);
  return free;
}

Node* Graph::insert_node(size_t pos, Node node) {
  pos = std::min(pos, nodes.size());
  auto it = nodes.insert(nodes.begin() + static_cast<std::ptrdiff_t>(pos),
                         std::make_unique<Node>(std::move(node)));
  return it->get();
}

void Graph::remove_node(const Node* node) {
  auto it =
      std::find_if(nodes.begin(), nodes.end(), [&](const auto& n) { return n.get() == node; });
  if (it == nodes.end()) throw InvalidArgument("remove_node: node is not in graph '" + name + "'");
  nodes.erase(it);
}

void Graph::replace_uses(const std::string& old_name, const std::string& new_name) {
  for (auto& n : nodes) {
    for (auto& i : n->inputs) {
      if (i == old_name) i = new_name;
    }
    for (auto& a : n->attributes) {
      for (auto& g : a.graphs) {
        // A nested graph that defines the name itself shadows the outer one.
        auto free = g->free_variables();
        if (std::find(free.begin(), free.end(), old_name) != free.end()) {
          g->replace_uses(old_name, new_name);
        }
      }
    }
  }
  for (auto& o : outputs) {
    if (o.name == old_name) o.name = new_name;
  }
}

void Graph::topological_sort() {
  renumber();
  std::unordered_map<std::string, size_t> producer_of;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const auto& o : nodes[i]->outputs) {
      if (!o.empty()) producer_of[o] = i;
    }
  }
  // Kahn's algorithm, stable: among ready nodes, the earliest original position goes first.
  std::vector<std::vector<size_t>> users(nodes.size());
  std::vector<size_t> pending(nodes.size(), 0);
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::set<size_t> deps;
    auto add = [&](const std::string& v) {
      auto it = producer_of.find(v);
      if (it != producer_of.end() && it->second != i) deps.insert(it->second);
    };
    for (const auto& in : nodes[i]->inputs) add(in);
    for (const auto& a : nodes[i]->attributes) {
      for (const auto& g : a.graphs) {
        for (const auto& v : g->free_variables()) add(v);
      }
    }
    pending[i] = deps.size();
    for (size_t d : deps) users[d].push_back(i);
  }
  std::set<size_t> ready;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (pending[i] == 0) ready.insert(i);
  }
  std::vector<size_t> order;
  while (!ready.empty()) {
    size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (size_t u : users[i]) {
      if (--pending[u] == 0) ready.insert(u);
    }
  }
  if (order.size() != nodes.size()) {
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (pending[i] != 0) {
        throw InvalidArgument("graph '" + name + "' has a cycle through " + nodes[i]->describe());
      }
    }
  }
  std::vector<std::unique_ptr<Node>> sorted;
  sorted.reserve(nodes.size());
  for (size_t i : order) sorted.push_back(std::move(nodes[i]));
  nodes = std::move(sorted);
  renumber();
}

void Graph::renumber() {
  for (size_t i = 0; i < nodes.size(); ++i) nodes[i]->index = i;
}

int64_t Model::opset(const std::string& dom) const {
  auto it = opset_imports.find(canonical_domain(dom));
  return it == opset_imports.end() ? 0 : it->second;
}

Model Model::clone() const {
  Model m;
  m.ir_version = ir_version;
  m.opset_imports = opset_imports;
  m.producer_name = producer_name;
  m.producer_version = producer_version;
  m.domain = domain;
  m.model_version = model_version;
  m.doc_string = doc_string;
  m.metadata = metadata;
  m.functions = functions;
  m.graph = graph.clone();
  return m;
}

}  // namespace graft::ir
