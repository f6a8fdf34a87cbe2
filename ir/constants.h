// Reading constant values out of a graph: what a pass or a gradient rule may rely on at build
// time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/model.h"

namespace graft::ir {

// The integers an INT64 or INT32 tensor holds; nullopt for other element types.
GRAFT_API std::optional<std::vector<int64_t>> tensor_ints(const onnx::TensorProto& t);

// The integers `value` holds when it is fixed when the graph is built: a non-overridable
// initializer or the output of a Constant node (value, value_int, value_ints); nullopt
// otherwise.
GRAFT_API std::optional<std::vector<int64_t>> constant_ints(const Graph& graph,
                                                            const std::string& value);

}  // namespace graft::ir
