#include "ir/transforms/value_types.h"

#include "onnx/onnx_pb.h"

namespace graft::ir {

std::optional<std::vector<int64_t>> fixed_dims(const onnx::TypeProto* type) {
  if (!type || !type->has_tensor_type() || !type->tensor_type().has_shape()) return std::nullopt;
  std::vector<int64_t> dims;
  for (const auto& d : type->tensor_type().shape().dim()) {
    if (!d.has_dim_value()) return std::nullopt;
    dims.push_back(d.dim_value());
  }
  return dims;
}

std::optional<std::vector<int64_t>> static_dims(const Graph& graph, const std::string& value) {
  // An initializer the caller may override has the shape its input declares.
  const onnx::TensorProto* t = graph.find_initializer(value);
  if (t && !graph.is_graph_input(value))
    return std::vector<int64_t>(t->dims().begin(), t->dims().end());
  return fixed_dims(graph.type_of(value));
}

int32_t elem_type(const Graph& graph, const std::string& value) {
  if (const onnx::TensorProto* t = graph.find_initializer(value)) return t->data_type();
  const onnx::TypeProto* type = graph.type_of(value);
  if (!type || !type->has_tensor_type()) return 0;
  return type->tensor_type().elem_type();
}

}  // namespace graft::ir
