// Small ONNX models for the C++ tests, built proto by proto and loaded as ir::Model.
#pragma once

#include <cctype>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ir/model.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"

namespace graft::test_util {

class ModelBuilder {
 public:
  explicit ModelBuilder(const std::string& graph_name, int64_t opset = 18) {
    model_.set_ir_version(10);
    model_.add_opset_import()->set_version(opset);
    graph()->set_name(graph_name);
  }

  onnx::GraphProto* graph() { return model_.mutable_graph(); }

  // A float initializer of shape `dims` whose element i is value(i), in order.
  void initializer(const std::string& name, const std::vector<int64_t>& dims,
                   const std::function<float(int64_t)>& value) {
    auto* t = graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : dims) {
      t->add_dims(d);
      n *= d;
    }
    for (int64_t i = 0; i < n; ++i) t->add_float_data(value(i));
  }

  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::string& output) {
    auto* n = graph()->add_node();
    n->set_op_type(op);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(output);
    return n;
  }

  static void int_attribute(onnx::NodeProto* node, const std::string& name, int64_t value) {
    auto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }

  // Float graph inputs and outputs. Dims that are numbers are fixed, others symbolic; without
  // dims the value has no shape.
  void input(const std::string& name, std::optional<std::vector<std::string>> dims) {
    declare(graph()->add_input(), name, dims);
  }
  void output(const std::string& name, std::optional<std::vector<std::string>> dims) {
    declare(graph()->add_output(), name, dims);
  }

  ir::Model build() const { return ir::load_model_from_bytes(model_.SerializeAsString()); }

 private:
  static void declare(onnx::ValueInfoProto* v, const std::string& name,
                      const std::optional<std::vector<std::string>>& dims) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    if (!dims) return;
    auto* shape = t->mutable_shape();
    for (const auto& d : *dims) {
      if (d.empty() || !std::isdigit(static_cast<unsigned char>(d[0]))) {
        shape->add_dim()->set_dim_param(d);
      } else {
        shape->add_dim()->set_dim_value(std::stoll(d));
      }
    }
  }

  onnx::ModelProto model_;
};

}  // namespace graft::test_util
