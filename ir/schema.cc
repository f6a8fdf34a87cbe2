#include "ir/schema.h"

#include "onnx/defs/schema.h"

namespace graft::ir {

const onnx::OpSchema* find_schema(const std::string& domain, const std::string& op_type,
                                  int64_t opset) {
  const std::string d = domain == "ai.onnx" ? std::string() : domain;
  return onnx::OpSchemaRegistry::Schema(op_type, static_cast<int>(opset), d);
}

}  // namespace graft::ir
