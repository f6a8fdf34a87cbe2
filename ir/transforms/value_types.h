// What the passes read from a value's declared or inferred type.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ir/model.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {

// The fixed dims of `value` (a constant initializer's own, or its declared or inferred type), or
// nullopt when its rank or a dim is not known.
inline std::optional<std::vector<int64_t>> static_dims(const Graph& graph,
                                                       const std::string& value) {
  // An initializer the caller may override has the shape its input declares.
  const onnx::TensorProto* t = graph.find_initializer(value);
  if (t && !graph.is_graph_input(value))
    return std::vector<int64_t>(t->dims().begin(), t->dims().end());
  const onnx::TypeProto* type = graph.type_of(value);
  if (!type || !type->has_tensor_type() || !type->tensor_type().has_shape()) return std::nullopt;
  std::vector<int64_t> dims;
  for (const auto& d : type->tensor_type().shape().dim()) {
    if (!d.has_dim_value()) return std::nullopt;
    dims.push_back(d.dim_value());
  }
  return dims;
}

// The element type (onnx::TensorProto::DataType) of `value`, or 0 (UNDEFINED) when not known.
inline int32_t elem_type(const Graph& graph, const std::string& value) {
  if (const onnx::TensorProto* t = graph.find_initializer(value)) return t->data_type();
  const onnx::TypeProto* type = graph.type_of(value);
  if (!type || !type->has_tensor_type()) return 0;
  return type->tensor_type().elem_type();
}

}  // namespace graft::ir
