#include "ir/transforms/fusion_match.h"

#include <algorithm>

#include "onnx/defs/tensor_proto_util.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {

std::optional<float> scalar_float(const Graph& graph, const std::string& value) {
  const onnx::TensorProto* t = graph.find_initializer(value);
  if (t && graph.is_graph_input(value)) return std::nullopt;
  if (!t) {
    const Node* c = graph.producer(value);
    if (!is_op(c, "Constant") || c->attributes.size() != 1) return std::nullopt;
    const onnx::AttributeProto& a = *c->attributes[0].proto;
    if (a.name() == "value_float") return a.f();
    if (a.name() != "value" || !a.has_t()) return std::nullopt;
    t = &a.t();
  }
  if (t->data_type() != onnx::TensorProto::FLOAT) return std::nullopt;
  int64_t count = 1;
  for (int64_t d : t->dims()) count *= d;
  if (count != 1 || t->data_location() == onnx::TensorProto::EXTERNAL) return std::nullopt;
  return onnx::ParseData<float>(t)[0];
}

Node* sole_reader(const Graph& graph, const std::string& value) {
  if (graph.is_graph_output(value)) return nullptr;
  const std::vector<Node*> readers = graph.consumers(value);
  if (readers.size() != 1) return nullptr;
  const Node* r = readers[0];
  if (std::count(r->inputs.begin(), r->inputs.end(), value) != 1) return nullptr;
  return readers[0];
}

std::optional<std::vector<int64_t>> known_dims(const Graph& graph, const std::string& value) {
  if (const onnx::TensorProto* t = graph.find_initializer(value); t && !graph.is_graph_input(value))
    return std::vector<int64_t>(t->dims().begin(), t->dims().end());
  const onnx::TypeProto* type = graph.type_of(value);
  if (!type || !type->has_tensor_type() || !type->tensor_type().has_shape()) return std::nullopt;
  std::vector<int64_t> dims;
  for (const auto& d : type->tensor_type().shape().dim())
    dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
  return dims;
}

Attribute float_attribute(const std::string& name, float value) {
  Attribute a = int_attribute(name, 0);
  a.proto->clear_i();
  a.proto->set_type(onnx::AttributeProto::FLOAT);
  a.proto->set_f(value);
  return a;
}

void remove_matched(Graph& graph, const std::vector<const Node*>& nodes) {
  std::vector<std::string> fed;
  for (const Node* n : nodes) {
    for (const auto& in : n->inputs) fed.push_back(in);
    for (const auto& out : n->outputs) graph.value_info.erase(out);
    graph.remove_node(n);
  }
  for (const auto& value : fed) {
    const Node* c = graph.producer(value);
    if (is_op(c, "Constant") && graph.consumers(value).empty() && !graph.is_graph_output(value))
      graph.remove_node(c);
  }
}

}  // namespace graft::ir
