#include "ir/transforms/fusion_match.h"

#include <algorithm>
#include <limits>

#include "ir/constants.h"
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

namespace {

// The rank of `value` when its type or the Transpose producing it says; -1 otherwise.
int64_t rank_of(const Graph& graph, const std::string& value) {
  if (const auto dims = known_dims(graph, value)) return static_cast<int64_t>(dims->size());
  const Node* p = graph.producer(value);
  if (is_op(p, "Transpose")) {
    if (const Attribute* perm = p->find_attr("perm")) return perm->proto->ints_size();
  }
  return -1;
}

int64_t normalized(int64_t index, int64_t size) { return index < 0 ? index + size : index; }

// A Slice bound clamped to [0, size] as ONNX clamps it (INT64_MIN / MAX for "from the start" /
// "to the end").
int64_t slice_bound(int64_t bound, int64_t size) {
  return std::clamp(normalized(bound, size), int64_t{0}, size);
}

std::optional<int64_t> single_int(const Graph& graph, const std::string& value) {
  const auto ints = constant_ints(graph, value);
  if (!ints || ints->size() != 1) return std::nullopt;
  return (*ints)[0];
}

// `d` followed back to where its size comes from: a recorded dim, the input dim a Transpose
// moved, the element of a Reshape's target.
ShapeDim resolved(const Graph& graph, ShapeDim d) {
  while (!d.value.empty()) {
    if (const auto dims = known_dims(graph, d.value);
        dims && d.axis < static_cast<int64_t>(dims->size()) && (*dims)[d.axis] > 0)
      return ShapeDim{(*dims)[d.axis], "", 0};
    const Node* p = graph.producer(d.value);
    if (is_op(p, "Transpose") && p->inputs.size() == 1) {
      const Attribute* perm = p->find_attr("perm");
      if (!perm || d.axis >= perm->proto->ints_size()) return d;
      d = ShapeDim{-1, p->inputs[0], perm->proto->ints(static_cast<int>(d.axis))};
      continue;
    }
    if (!is_op(p, "Reshape")) return d;
    const auto dims = reshape_dims(graph, *p);
    if (!dims || d.axis >= static_cast<int64_t>(dims->size())) return d;
    const ShapeDim& t = (*dims)[static_cast<size_t>(d.axis)];
    if (t.value.empty()) return t.constant > 0 ? t : d;
    if (t.value == d.value) return d;  // a -1: the recorded dim was checked above
    d = t;
  }
  return d;
}

}  // namespace

std::optional<std::vector<ShapeDim>> shape_dims(const Graph& graph, const std::string& shape) {
  if (const auto ints = constant_ints(graph, shape)) {
    std::vector<ShapeDim> dims;
    for (int64_t v : *ints) dims.push_back(ShapeDim{v, "", 0});
    return dims;
  }
  const Node* p = graph.producer(shape);
  if (!p || !p->domain.empty() || p->inputs.empty()) return std::nullopt;
  if (p->op_type == "Shape") {
    const int64_t rank = rank_of(graph, p->inputs[0]);
    if (rank < 0) return std::nullopt;
    const Attribute* start = p->find_attr("start");
    const Attribute* end = p->find_attr("end");
    std::vector<ShapeDim> dims;
    for (int64_t i = slice_bound(start ? start->proto->i() : 0, rank),
                 e = slice_bound(end ? end->proto->i() : rank, rank);
         i < e; ++i)
      dims.push_back(ShapeDim{-1, p->inputs[0], i});
    return dims;
  }
  if (p->op_type == "Concat") {
    const Attribute* axis = p->find_attr("axis");
    if (!axis || (axis->proto->i() != 0 && axis->proto->i() != -1)) return std::nullopt;
    std::vector<ShapeDim> dims;
    for (const auto& in : p->inputs) {
      const auto part = shape_dims(graph, in);
      if (!part) return std::nullopt;
      dims.insert(dims.end(), part->begin(), part->end());
    }
    return dims;
  }
  if (p->op_type != "Unsqueeze" && p->op_type != "Squeeze" && p->op_type != "Gather" &&
      p->op_type != "Slice")
    return std::nullopt;
  const auto data = shape_dims(graph, p->inputs[0]);
  if (!data) return std::nullopt;
  const auto size = static_cast<int64_t>(data->size());
  if (p->op_type == "Unsqueeze" || p->op_type == "Squeeze") {
    // One element, as a scalar or a 1-element vector: the same dim either way.
    return size == 1 ? data : std::nullopt;
  }
  if (p->op_type == "Gather" && p->inputs.size() == 2) {
    const Attribute* axis = p->find_attr("axis");
    const auto indices = constant_ints(graph, p->inputs[1]);
    if ((axis && axis->proto->i() != 0) || !indices) return std::nullopt;
    std::vector<ShapeDim> dims;
    for (int64_t index : *indices) {
      const int64_t i = normalized(index, size);
      if (i < 0 || i >= size) return std::nullopt;
      dims.push_back((*data)[static_cast<size_t>(i)]);
    }
    return dims;
  }
  if (p->op_type == "Slice" && p->inputs.size() >= 3) {
    const auto start = single_int(graph, p->inputs[1]);
    const auto end = single_int(graph, p->inputs[2]);
    const auto axis = p->inputs.size() > 3 ? single_int(graph, p->inputs[3]) : int64_t{0};
    const auto step = p->inputs.size() > 4 ? single_int(graph, p->inputs[4]) : int64_t{1};
    if (!start || !end || !axis || (*axis != 0 && *axis != -1) || step != int64_t{1})
      return std::nullopt;
    const int64_t from = slice_bound(*start, size), to = slice_bound(*end, size);
    return std::vector<ShapeDim>(data->begin() + from, data->begin() + std::max(from, to));
  }
  return std::nullopt;
}

std::optional<std::vector<ShapeDim>> reshape_dims(const Graph& graph, const Node& reshape) {
  const std::string& out = reshape.outputs[0];
  auto dims = reshape.inputs.size() == 2 ? shape_dims(graph, reshape.inputs[1]) : std::nullopt;
  if (!dims) {
    const auto recorded = known_dims(graph, out);
    if (!recorded) return std::nullopt;
    dims.emplace();
    for (size_t i = 0; i < recorded->size(); ++i)
      dims->push_back(ShapeDim{-1, out, static_cast<int64_t>(i)});
    return dims;
  }
  const Attribute* allowzero = reshape.find_attr("allowzero");
  const bool zero_copies = !allowzero || allowzero->proto->i() == 0;
  for (size_t i = 0; i < dims->size(); ++i) {
    ShapeDim& d = (*dims)[i];
    if (!d.value.empty()) continue;
    if (d.constant == 0 && zero_copies) {
      d = ShapeDim{-1, reshape.inputs[0], static_cast<int64_t>(i)};
    } else if (d.constant < 0) {
      d = ShapeDim{-1, out, static_cast<int64_t>(i)};
    }
  }
  return dims;
}

bool same_dim(const Graph& graph, const ShapeDim& a, const ShapeDim& b) {
  const ShapeDim x = resolved(graph, a), y = resolved(graph, b);
  if (x.value.empty() || y.value.empty())
    return x.value.empty() && y.value.empty() && x.constant > 0 && x.constant == y.constant;
  return x.value == y.value && x.axis == y.axis;
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
