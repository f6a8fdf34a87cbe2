// Op-schema lookup in ONNX's registry.
#pragma once

#include <string>

namespace onnx {
class OpSchema;
}

namespace graft::ir {

// The newest schema of (domain, op_type) whose since_version <= opset, or nullptr if the op is
// not a standard one (custom domains, unknown ops).
const onnx::OpSchema* find_schema(const std::string& domain, const std::string& op_type,
                                  int64_t opset);

}  // namespace graft::ir
