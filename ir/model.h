// graft's in-memory model: Model, Graph, Node and their value metadata, loaded from and saved
// to ONNX protobuf. Names identify values, as in ONNX; Graph offers the editing operations that
// transforms and autodiff need (insert, remove, replace uses, topological order).
#pragma once

#include "ir/api.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace onnx {
class AttributeProto;
class TensorProto;
class TypeProto;
class FunctionProto;
}  // namespace onnx

namespace graft::ir {

class Graph;

struct Attribute {
  std::string name;
  // Every field of the attribute except nested graphs, which live in `graphs` as ir::Graph.
  std::shared_ptr<onnx::AttributeProto> proto;
  std::vector<std::shared_ptr<Graph>> graphs;
};

// Attributes built by passes: an int, a list of ints, a string.
GRAFT_API Attribute int_attribute(const std::string& name, int64_t value);
GRAFT_API Attribute ints_attribute(const std::string& name, const std::vector<int64_t>& values);
GRAFT_API Attribute string_attribute(const std::string& name, const std::string& value);

// The type of a value holding `t`: its element type and fixed dims.
GRAFT_API std::shared_ptr<onnx::TypeProto> tensor_type(const onnx::TensorProto& t);

// A named value's declared type (may be absent for intermediates before shape inference).
struct ValueInfo {
  std::string name;
  std::shared_ptr<onnx::TypeProto> type;
  std::string doc_string;
};

class GRAFT_API Node {
 public:
  std::string name;
  std::string op_type;
  std::string domain;                // "" is ai.onnx
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;  // "" marks an omitted optional output
  std::vector<Attribute> attributes;
  std::string doc_string;

  const Attribute* find_attr(const std::string& attr_name) const;
  // "[Conv] node 'conv1'" (or "[Conv] node #3" for an unnamed node at index 3 of its graph).
  std::string describe() const;
  // Position in the owning graph when it was last numbered; used only for messages.
  size_t index = 0;
};

class GRAFT_API Graph {
 public:
  std::string name;
  std::string doc_string;
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<std::unique_ptr<Node>> nodes;  // kept in a valid execution order
  std::vector<std::shared_ptr<onnx::TensorProto>> initializers;
  std::map<std::string, ValueInfo> value_info;  // types of intermediate values

  Graph();
  ~Graph();
  Graph(Graph&&) noexcept;
  Graph& operator=(Graph&&) noexcept;
  // Deep copy (nested graphs and attributes included); initializer protos and tensor-valued
  // attributes are shared, not copied: replace them, never edit them in place.
  Graph clone() const;

  // --- queries ---
  const onnx::TensorProto* find_initializer(const std::string& value) const;
  bool is_graph_input(const std::string& value) const;
  bool is_graph_output(const std::string& value) const;
  // The node producing `value`, or nullptr for inputs, initializers and outer-scope values.
  Node* producer(const std::string& value) const;
  std::vector<Node*> consumers(const std::string& value) const;
  // The declared or inferred type of `value` (inputs, outputs, value_info), or nullptr.
  const onnx::TypeProto* type_of(const std::string& value) const;
  // Values read by this graph or its nested graphs that none of them defines: the outer-scope
  // references a control-flow node must supply.
  std::vector<std::string> free_variables() const;

  // --- editing ---
  // Inserts before position `pos` (nodes.size() appends) and returns the node.
  Node* insert_node(size_t pos, Node node);
  Node* add_node(Node node) { return insert_node(nodes.size(), std::move(node)); }
  void remove_node(const Node* node);
  // Every read of `old_name` (nodes here and in nested graphs, graph outputs) now reads
  // `new_name`.
  void replace_uses(const std::string& old_name, const std::string& new_name);
  // Reorders nodes so each comes after its producers. Throws InvalidArgument naming a node on a
  // cycle or reading an undefined value.
  void topological_sort();
  // Renumbers Node::index.
  void renumber();
};

class GRAFT_API Model {
 public:
  int64_t ir_version = 0;
  std::map<std::string, int64_t> opset_imports;  // domain ("" for ai.onnx) -> version
  std::string producer_name;
  std::string producer_version;
  std::string domain;
  int64_t model_version = 0;
  std::string doc_string;
  std::map<std::string, std::string> metadata;
  std::vector<std::shared_ptr<onnx::FunctionProto>> functions;  // model-local functions
  Graph graph;

  // Opset version the model imports for `domain` ("ai.onnx" and "" are the same); 0 if none.
  int64_t opset(const std::string& domain) const;
  Model clone() const;
};

// Canonical domain name: "ai.onnx" becomes "".
std::string canonical_domain(const std::string& domain);

}  // namespace graft::ir
