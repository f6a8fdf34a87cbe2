// Loading and saving models: ONNX protobuf files or bytes to and from ir::Model.
#pragma once

#include "ir/api.h"

#include <string>

#include "ir/model.h"

namespace onnx {
class ModelProto;
class NodeProto;
}  // namespace onnx

namespace graft::ir {

struct LoadOptions {
  bool check = true;         // run onnx::checker; invalid models raise InvalidArgument
  bool infer_shapes = true;  // run ONNX shape inference and record value types
};

// Loads an ONNX model file. External data is read from files inside the model's folder only:
// absolute locations, ".." components and symbolic links are refused. Throws InvalidArgument
// naming the file and the problem (unreadable, truncated, invalid graph, unsafe external data).
GRAFT_API Model load_model(const std::string& path, const LoadOptions& options = {});
// Loads serialized ModelProto bytes. `base_dir` is the folder external data is resolved against;
// empty means the model may not use external data.
GRAFT_API Model load_model_from_bytes(const std::string& bytes, const std::string& base_dir = "",
                                      const LoadOptions& options = {});

// Writes a ModelProto that onnx.checker accepts. Throws InvalidArgument if the file cannot be
// written; an existing file is replaced only once the new one is complete.
GRAFT_API void save_model(const Model& model, const std::string& path);
GRAFT_API std::string serialize_model(const Model& model);

// Conversions used by the loader, the saver and tests.
Model model_from_proto(const onnx::ModelProto& proto);
void model_to_proto(const Model& model, onnx::ModelProto* proto);
Node node_from_proto(const onnx::NodeProto& proto);

// Runs ONNX shape inference on `model` and records the inferred types of intermediate values
// (in nested graphs too). Inference failures leave the types as they were.
void infer_shapes(Model& model);

// The model converted to ai.onnx opset `target` with ONNX's version converter. Throws
// InvalidArgument when the converter cannot convert one of its ops.
Model convert_opset(const Model& model, int64_t target);

}  // namespace graft::ir
