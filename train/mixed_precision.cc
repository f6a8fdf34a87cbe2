#include "train/mixed_precision.h"

#include <cstring>
#include <map>

#include "exec/error.h"
#include "ir/names.h"
#include "onnx/onnx_pb.h"

namespace graft::training {
namespace {

bool is_float32(const ir::Graph& g, const std::string& value) {
  if (const onnx::TypeProto* t = g.type_of(value))
    return t->has_tensor_type() && t->tensor_type().elem_type() == onnx::TensorProto::FLOAT;
  if (const onnx::TensorProto* init = g.find_initializer(value))
    return init->data_type() == onnx::TensorProto::FLOAT;
  return false;
}

// A fresh value name, "<base>/<what>", unique in the graph.
std::string fresh(const ir::Graph& g, const std::string& base, const std::string& what) {
  std::string name = base + "/" + what;
  for (int i = 1; g.producer(name) != nullptr || g.is_graph_input(name) ||
                  g.find_initializer(name) != nullptr || g.value_info.count(name);
       ++i)
    name = base + "/" + what + std::to_string(i);
  return name;
}

ir::Node node(const std::string& op, std::vector<std::string> inputs, std::string output,
              std::vector<ir::Attribute> attrs = {}) {
  ir::Node n;
  n.op_type = op;
  n.name = output + "/" + op;
  n.inputs = std::move(inputs);
  n.outputs = {std::move(output)};
  n.attributes = std::move(attrs);
  return n;
}

std::shared_ptr<onnx::TypeProto> scalar_type(int elem) {
  auto t = std::make_shared<onnx::TypeProto>();
  t->mutable_tensor_type()->set_elem_type(elem);
  t->mutable_tensor_type()->mutable_shape();
  return t;
}

size_t position_of(const ir::Graph& g, const ir::Node* n) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i].get() == n) return i;
  }
  return g.nodes.size();
}

}  // namespace

const std::vector<std::string>& low_precision_ops() {
  // PyTorch autocast's float16 list, as far as these ops go: the products that tensor cores
  // speed up. Reductions, normalizations, softmax and losses stay in float32.
  static const std::vector<std::string> ops = {"MatMul", "Gemm", "Conv", "ConvTranspose"};
  return ops;
}

ir::Model autocast(const ir::Model& forward, DType compute) {
  if (compute != DType::Float16 && compute != DType::BFloat16) {
    throw InvalidArgument(std::string("mixed precision computes in float16 or bfloat16, not ") +
                          dtype_name(compute));
  }
  ir::Model m = forward.clone();
  ir::Graph& g = m.graph;
  const auto low = static_cast<int64_t>(compute);
  const std::string suffix = compute == DType::Float16 ? "fp16" : "bf16";
  std::map<std::string, std::string> cast_of;  // float32 value -> its low-precision copy
  std::vector<ir::Node*> targets;
  for (const auto& n : g.nodes) {
    if (!n->domain.empty()) continue;
    bool product = false;
    for (const auto& op : low_precision_ops()) product = product || n->op_type == op;
    if (!product) continue;
    bool all_float = !n->outputs.empty();
    for (const auto& in : n->inputs) all_float = all_float && (in.empty() || is_float32(g, in));
    for (const auto& out : n->outputs) all_float = all_float && is_float32(g, out);
    if (all_float) targets.push_back(n.get());
  }
  for (ir::Node* n : targets) {
    for (auto& in : n->inputs) {
      if (in.empty()) continue;
      auto it = cast_of.find(in);
      if (it == cast_of.end()) {
        const std::string copy = fresh(g, in, suffix);
        // Right before the first node that reads it, so the copy is made as late as possible.
        g.insert_node(position_of(g, n), node("Cast", {in}, copy, {ir::int_attribute("to", low)}));
        it = cast_of.emplace(in, copy).first;
      }
      in = it->second;
    }
    for (auto& out : n->outputs) {
      const std::string original = out;
      out = fresh(g, original, suffix);
      g.value_info.erase(original);
      g.insert_node(position_of(g, n) + 1,
                    node("Cast", {out}, original,
                         {ir::int_attribute("to", static_cast<int64_t>(DType::Float))}));
    }
  }
  g.renumber();
  return m;
}

std::string scale_loss(ir::Model& forward, const std::string& loss) {
  ir::Graph& g = forward.graph;
  if (!g.is_graph_output(loss)) throw InvalidArgument("loss '" + loss + "' is not an output");
  g.inputs.push_back({kLossScale, scalar_type(onnx::TensorProto::FLOAT), ""});
  const std::string scaled = fresh(g, loss, "scaled");
  g.add_node(node("Mul", {loss, kLossScale}, scaled));
  g.outputs.push_back({scaled, nullptr, ""});
  return scaled;
}

void unscale_gradients(ir::Model& gradients, const std::vector<std::string>& params) {
  ir::Graph& g = gradients.graph;
  for (const auto& p : params) {
    const std::string grad = p + names::kGradSuffix;
    if (!g.is_graph_output(grad)) throw InvalidArgument("no gradient output for '" + p + "'");
    const std::string scaled = fresh(g, grad, "scaled");
    // The node that made the gradient now makes its scaled value; a Div hands the gradient
    // back under its own name.
    for (auto& n : g.nodes) {
      for (auto& out : n->outputs) {
        if (out == grad) out = scaled;
      }
      for (auto& in : n->inputs) {
        if (in == grad) in = scaled;
      }
    }
    if (!g.is_graph_input(kLossScale))
      g.inputs.push_back({kLossScale, scalar_type(onnx::TensorProto::FLOAT), ""});
    g.add_node(node("Div", {scaled, kLossScale}, grad));
  }
  g.renumber();
}

void guard_update(ir::Model& step, const std::vector<std::string>& params) {
  ir::Graph& g = step.graph;
  // x * 0 is 0 for a finite x and NaN for an infinite or NaN one: the sum over every updated
  // parameter of its elements times 0 is 0 exactly when all of them are finite.
  std::vector<std::string> probes;
  for (const auto& p : params) {
    const std::string updated = p + names::kNewSuffix;
    if (!g.is_graph_output(updated)) throw InvalidArgument("no update output for '" + p + "'");
    const std::string zero = fresh(g, updated, "zero");
    g.add_node(node("Mul", {updated, zero + "/value"}, zero));
    auto value = std::make_shared<onnx::TensorProto>();
    value->set_name(zero + "/value");
    const onnx::TypeProto* t = g.type_of(updated);
    value->set_data_type(t && t->has_tensor_type() ? t->tensor_type().elem_type()
                                                   : onnx::TensorProto::FLOAT);
    if (value->data_type() == onnx::TensorProto::DOUBLE) {
      value->add_double_data(0.0);
    } else {
      value->set_data_type(onnx::TensorProto::FLOAT);
      value->add_float_data(0.0f);
    }
    g.initializers.push_back(value);
    const std::string total = fresh(g, updated, "probe");
    g.add_node(node("ReduceSum", {zero}, total, {ir::int_attribute("keepdims", 0)}));
    const std::string as_float = fresh(g, updated, "probe_float");
    g.add_node(node("Cast", {total}, as_float,
                    {ir::int_attribute("to", static_cast<int64_t>(DType::Float))}));
    probes.push_back(as_float);
  }
  const std::string sum = fresh(g, kUpdateFinite, "sum");
  g.add_node(node("Sum", probes, sum));
  auto zero = std::make_shared<onnx::TensorProto>();
  zero->set_name(fresh(g, kUpdateFinite, "zero"));
  zero->set_data_type(onnx::TensorProto::FLOAT);
  zero->add_float_data(0.0f);
  g.initializers.push_back(zero);
  g.add_node(node("Equal", {sum, zero->name()}, kUpdateFinite));
  // Every state output falls back to its input.
  for (auto& out : g.outputs) {
    if (!out.name.ends_with(names::kNewSuffix)) continue;
    const std::string base = out.name.substr(0, out.name.size() - std::strlen(names::kNewSuffix));
    if (!g.is_graph_input(base)) continue;
    const std::string computed = fresh(g, out.name, "computed");
    for (auto& n : g.nodes) {
      for (auto& o : n->outputs) {
        if (o == out.name) o = computed;
      }
      for (auto& in : n->inputs) {
        if (in == out.name) in = computed;
      }
    }
    g.add_node(node("Where", {kUpdateFinite, computed, base}, out.name));
  }
  g.outputs.push_back({kUpdateFinite, scalar_type(onnx::TensorProto::BOOL), ""});
  g.renumber();
}

}  // namespace graft::training
