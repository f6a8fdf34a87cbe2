// What the passes read from a value's declared or inferred type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/api.h"
#include "ir/model.h"

namespace onnx {
class TypeProto;
}

namespace graft::ir {

// The dims of a tensor type whose rank and every dim are fixed numbers, else nullopt (also for
// nullptr and a type that is not a tensor's).
GRAFT_API std::optional<std::vector<int64_t>> fixed_dims(const onnx::TypeProto* type);

// The fixed dims of `value` (a constant initializer's own, or its declared or inferred type), or
// nullopt when its rank or a dim is not known.
GRAFT_API std::optional<std::vector<int64_t>> static_dims(const Graph& graph,
                                                          const std::string& value);

// The element type (onnx::TensorProto::DataType) of `value`, or 0 (UNDEFINED) when not known.
GRAFT_API int32_t elem_type(const Graph& graph, const std::string& value);

}  // namespace graft::ir
