#include "optim/optimizer.h"

#include <algorithm>

#include "autodiff/gradient_graph.h"
#include "ir/error.h"
#include "ir/names.h"
#include "onnx/onnx_pb.h"
#include "optim/update_ops.h"

namespace graft::optim {
namespace {

using autodiff::Attr;
using autodiff::GradientGraph;

std::shared_ptr<onnx::TypeProto> scalar_type(int32_t dtype) {
  auto t = std::make_shared<onnx::TypeProto>();
  t->mutable_tensor_type()->set_elem_type(dtype);
  t->mutable_tensor_type()->mutable_shape();
  return t;
}

}  // namespace

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::SGD:
      return "sgd";
    case Kind::Adam:
      return "adam";
    case Kind::AdamW:
      return "adamw";
    case Kind::Adagrad:
      return "adagrad";
    case Kind::RMSprop:
      return "rmsprop";
    case Kind::LAMB:
      return "lamb";
  }
  return "";
}

Kind parse_kind(const std::string& name) {
  for (Kind k : {Kind::SGD, Kind::Adam, Kind::AdamW, Kind::Adagrad, Kind::RMSprop, Kind::LAMB}) {
    if (name == kind_name(k)) return k;
  }
  throw InvalidArgument("unknown optimizer '" + name +
                        "' (sgd, adam, adamw, adagrad, rmsprop, lamb)");
}

ir::Model add_optimizer(const ir::Model& gradient_model, const std::vector<std::string>& params,
                        const OptimizerConfig& config) {
  ir::Model model = gradient_model.clone();
  ir::Graph& graph = model.graph;
  auto has_output = [&](const std::string& name) {
    return std::any_of(graph.outputs.begin(), graph.outputs.end(),
                       [&](const ir::ValueInfo& v) { return v.name == name; });
  };
  const UpdateOp op = update_op(config);
  for (const auto& f : model.functions) {
    if (f->name() == op.op_type && f->domain() == names::kDomain)
      throw InvalidArgument("the model already declares the function com.graft." + op.op_type);
  }
  const std::string lr = names::kLearningRate, step = names::kStep;
  graph.inputs.push_back({lr, scalar_type(onnx::TensorProto::FLOAT), ""});
  graph.inputs.push_back({step, scalar_type(onnx::TensorProto::INT64), ""});

  ir::Node update;
  update.op_type = op.op_type;
  update.domain = names::kDomain;
  update.name = "optim/" + op.op_type;
  update.inputs = {lr, step};
  std::vector<ir::ValueInfo> new_outputs;
  std::vector<const onnx::TensorProto*> inits;
  for (const auto& p : params) {
    const onnx::TensorProto* init = graph.find_initializer(p);
    if (!init) throw InvalidArgument("parameter '" + p + "' is not an initializer");
    if (init->data_type() != onnx::TensorProto::FLOAT &&
        init->data_type() != onnx::TensorProto::DOUBLE) {
      throw InvalidArgument("parameter '" + p +
                            "' is not float or double, the types the optimizer updates");
    }
    if (!has_output(p + names::kGradSuffix))
      throw InvalidArgument("the model has no gradient output '" + p + "_grad'");
    if (!graph.is_graph_input(p)) graph.inputs.push_back({p, ir::tensor_type(*init), ""});
    inits.push_back(init);
    update.inputs.push_back(p);
    update.outputs.push_back(p + names::kNewSuffix);
    new_outputs.push_back({p + names::kNewSuffix, ir::tensor_type(*init), ""});
  }
  for (const auto& p : params) update.inputs.push_back(p + names::kGradSuffix);
  const std::string opt = kind_name(config.kind);
  for (const auto& slot : op.slots) {
    for (size_t i = 0; i < params.size(); ++i) {
      // State tensors are inputs whose default (an initializer of zeros) is the first step's.
      const onnx::TensorProto& init = *inits[i];
      const std::string name = params[i] + "." + opt + "." + slot;
      auto zeros = std::make_shared<onnx::TensorProto>();
      zeros->set_name(name);
      zeros->set_data_type(init.data_type());
      size_t count = 1;
      for (int64_t d : init.dims()) {
        zeros->add_dims(d);
        count *= static_cast<size_t>(d);
      }
      const size_t width = init.data_type() == onnx::TensorProto::DOUBLE ? 8 : 4;
      zeros->set_raw_data(std::string(count * width, '\0'));
      graph.initializers.push_back(zeros);
      graph.inputs.push_back({name, ir::tensor_type(init), ""});
      update.inputs.push_back(name);
      update.outputs.push_back(name + names::kNewSuffix);
      new_outputs.push_back({name + names::kNewSuffix, ir::tensor_type(init), ""});
    }
  }
  for (const auto& a : op.attrs) update.attributes.push_back({a.proto->name(), a.proto, {}});
  if (!params.empty()) {
    model.functions.push_back(update_function(op, params.size(), model.opset("")));
    model.opset_imports[names::kDomain] = 1;
    graph.add_node(std::move(update));
  }

  // graft.step.new = graft.step + 1, a scalar.
  GradientGraph counter(model);
  auto emit = [&](const std::string& type, const std::vector<std::string>& in,
                  const std::vector<Attr>& attrs, const std::string& output) {
    std::string out = counter.emit("optim", type, in, 1, attrs, "")[0];
    if (!output.empty()) counter.emitted().back().outputs[0] = output;
    return output.empty() ? out : output;
  };
  std::string one =
      emit("Constant", {}, {Attr::scalar_tensor("value", onnx::TensorProto::INT64, 1)}, "");
  std::string next = emit("Add", {step, one}, {}, "");
  std::string shape = emit("Constant", {}, {Attr::ints("value_ints", {})}, "");
  emit("Reshape", {next, shape}, {}, std::string(names::kStep) + names::kNewSuffix);
  new_outputs.push_back(
      {std::string(names::kStep) + names::kNewSuffix, scalar_type(onnx::TensorProto::INT64), ""});
  for (auto& n : counter.emitted()) graph.add_node(std::move(n));
  for (auto& o : new_outputs) graph.outputs.push_back(o);
  graph.renumber();
  return model;
}

ir::Model gradients_as_inputs(const ir::Model& forward, const std::vector<std::string>& params) {
  ir::Model m;
  m.ir_version = forward.ir_version;
  m.opset_imports = forward.opset_imports;
  if (m.opset("") < 18) m.opset_imports[""] = 18;
  m.graph.name = "optimizer_step";
  for (const auto& p : params) {
    const onnx::TensorProto* t = forward.graph.find_initializer(p);
    if (!t) throw InvalidArgument("parameter '" + p + "' is not an initializer of the model");
    m.graph.initializers.push_back(std::make_shared<onnx::TensorProto>(*t));
    auto type = ir::tensor_type(*t);
    const std::string gradient = names::kGradientPrefix + p, grad = p + names::kGradSuffix;
    m.graph.inputs.push_back({gradient, type, ""});
    ir::Node id;
    id.op_type = "Identity";
    id.name = grad + "/Identity";
    id.inputs = {gradient};
    id.outputs = {grad};
    m.graph.add_node(std::move(id));
    m.graph.outputs.push_back({grad, type, ""});
  }
  return m;
}

}  // namespace graft::optim
