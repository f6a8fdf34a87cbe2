// What the host tests of the convolution, pooling and batch normalization families share: the
// tolerances, and a model of one op whose output types ONNX does not infer (com.graft's ops,
// opset 9's BatchNormalization in training).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ir/names.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {

// Relative and absolute tolerance for sums of products of values near 1: float32 and double
// within 1e-5, the 16-bit floats within 1e-2 (a result rounded twice, once before a bias is
// added, may differ from the CPU's by an ulp of the larger operand).
inline std::pair<double, double> dnn_tolerance(DType dtype) {
  if (dtype == DType::Float16 || dtype == DType::BFloat16) return {1e-2, 1e-2};
  return {1e-5, 1e-5};
}

// `op` (of com.graft, or of ai.onnx at `opset` when `onnx_op`) reading graph inputs in0, in1...
// (`inputs`) and writing out0, out1... of the given dtypes and shapes; an output whose dtype is
// Undefined is left out of the node (its name empty). `attrs` sets the node's attributes.
inline ir::Model declared_op_model(const std::string& op, const std::vector<Tensor>& inputs,
                                   const std::vector<std::pair<DType, Shape>>& outputs,
                                   const std::function<void(onnx::NodeProto&)>& attrs,
                                   bool onnx_op = false, int64_t opset = 18) {
  onnx::ModelProto m;
  m.set_ir_version(10);
  m.add_opset_import()->set_version(opset);
  auto* graft_opset = m.add_opset_import();
  graft_opset->set_domain(names::kDomain);
  graft_opset->set_version(1);
  auto* g = m.mutable_graph();
  g->set_name(op);
  auto declare = [](onnx::ValueInfoProto* v, const std::string& name, DType dtype,
                    const Shape& shape) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(static_cast<int>(dtype));
    for (int64_t d : shape) t->mutable_shape()->add_dim()->set_dim_value(d);
  };
  auto* n = g->add_node();
  if (!onnx_op) n->set_domain(names::kDomain);
  n->set_op_type(op);
  n->set_name("node");
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string name = "in" + std::to_string(i);
    declare(g->add_input(), name, inputs[i].dtype(), inputs[i].shape());
    n->add_input(name);
  }
  for (size_t k = 0; k < outputs.size(); ++k) {
    if (outputs[k].first == DType::Undefined) {
      n->add_output("");
      continue;
    }
    const std::string name = "out" + std::to_string(k);
    declare(g->add_output(), name, outputs[k].first, outputs[k].second);
    n->add_output(name);
  }
  if (attrs) attrs(*n);
  return ir::load_model_from_bytes(m.SerializeAsString());
}

// The feeds of declared_op_model's inputs.
inline std::map<std::string, Value> declared_op_feeds(const std::vector<Tensor>& inputs) {
  std::map<std::string, Value> feeds;
  for (size_t i = 0; i < inputs.size(); ++i) feeds["in" + std::to_string(i)] = Value(inputs[i]);
  return feeds;
}

}  // namespace graft::test_util
