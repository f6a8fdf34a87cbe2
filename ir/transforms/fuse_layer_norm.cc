// Layer normalization over the last axis, in the two forms exporters leave it:
//   decomposed:  d = x - ReduceMean(x);  y = d / Sqrt(ReduceMean(d^2) + eps) * gamma (+ beta)
//                (d^2 as Pow(d, 2) or Mul(d, d)) becomes LayerNormalization (com.graft before
//                opset 17, where ai.onnx has none);
//   after a residual Add:  LayerNormalization(a + b) becomes com.graft.SkipLayerNormalization
//                (a, b, gamma, beta), whose second output is the sum when anything else reads it.
#include "ir/constants.h"
#include "ir/names.h"
#include "ir/transforms/fusion_match.h"
#include "ir/transforms/transformer_fusions.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {
namespace {

// Whether `reduce` is a ReduceMean of `input` over its last axis only, keeping dims.
bool mean_over_last_axis(const Graph& g, const Node* reduce, const std::string& input) {
  if (!is_op(reduce, "ReduceMean") || reduce->inputs.empty() || reduce->inputs[0] != input)
    return false;
  if (const Attribute* keep = reduce->find_attr("keepdims"); keep && keep->proto->i() == 0)
    return false;
  std::vector<int64_t> axes;
  if (const Attribute* a = reduce->find_attr("axes")) {
    axes.assign(a->proto->ints().begin(), a->proto->ints().end());
  } else if (reduce->inputs.size() > 1 && !reduce->inputs[1].empty()) {
    const auto ints = constant_ints(g, reduce->inputs[1]);
    if (!ints) return false;
    axes = *ints;
  }
  if (axes.size() != 1) return false;
  if (axes[0] == -1) return true;
  const auto dims = known_dims(g, input);
  return dims && axes[0] == static_cast<int64_t>(dims->size()) - 1;
}

// A 1-D float constant (gamma, beta) or nullptr.
const onnx::TensorProto* vector_constant(const Graph& g, const std::string& value) {
  const onnx::TensorProto* t = g.find_initializer(value);
  if (!t || g.is_graph_input(value) || t->dims_size() != 1 ||
      t->data_type() != onnx::TensorProto::FLOAT)
    return nullptr;
  return t;
}

bool try_fuse_decomposed(Graph& g, const Node& mean, int64_t onnx_opset) {
  if (!is_op(&mean, "ReduceMean") || mean.inputs.empty()) return false;
  const std::string x = mean.inputs[0];
  if (!mean_over_last_axis(g, &mean, x)) return false;
  const Node* sub = sole_reader(g, mean.outputs[0]);
  if (!is_op(sub, "Sub") || sub->inputs.size() != 2 || sub->inputs[0] != x ||
      sub->inputs[1] != mean.outputs[0])
    return false;
  // d = x - mean is read by the square and by the Div, nothing else.
  const std::string& d = sub->outputs[0];
  const std::vector<Node*> readers = g.consumers(d);
  if (readers.size() != 2 || g.is_graph_output(d)) return false;
  const Node* square = nullptr;
  Node* div = nullptr;
  for (Node* r : readers) {
    if (is_op(r, "Div") && r->inputs.size() == 2 && r->inputs[0] == d) {
      div = r;
    } else if ((is_op(r, "Pow") && r->inputs.size() == 2 && r->inputs[0] == d &&
                is_scalar(g, r->inputs[1], 2.0)) ||
               (is_op(r, "Mul") && r->inputs.size() == 2 && r->inputs[0] == d &&
                r->inputs[1] == d)) {
      square = r;
    }
  }
  if (!square || !div) return false;
  const Node* var = sole_reader(g, square->outputs[0]);
  if (!mean_over_last_axis(g, var, square->outputs[0])) return false;
  const Node* add_eps = sole_reader(g, var->outputs[0]);
  const std::string* eps =
      is_op(add_eps, "Add") ? other_operand(*add_eps, var->outputs[0]) : nullptr;
  const std::optional<float> epsilon = eps ? scalar_float(g, *eps) : std::nullopt;
  if (!epsilon) return false;
  const Node* sqrt = sole_reader(g, add_eps->outputs[0]);
  if (!is_op(sqrt, "Sqrt") || div->inputs[1] != sqrt->outputs[0] ||
      sole_reader(g, sqrt->outputs[0]) != div)
    return false;
  Node* mul = sole_reader(g, div->outputs[0]);
  const std::string* gamma = is_op(mul, "Mul") ? other_operand(*mul, div->outputs[0]) : nullptr;
  if (!gamma || !vector_constant(g, *gamma)) return false;
  std::vector<const Node*> nodes = {&mean, sub, square, var, add_eps, sqrt, div};
  Node* out = mul;
  std::string beta;
  Node* add_beta = sole_reader(g, mul->outputs[0]);
  const std::string* b =
      is_op(add_beta, "Add") ? other_operand(*add_beta, mul->outputs[0]) : nullptr;
  if (b && vector_constant(g, *b)) {
    beta = *b;
    nodes.push_back(mul);
    out = add_beta;
  }
  const std::vector<std::string> inputs = beta.empty() ? std::vector<std::string>{x, *gamma}
                                                       : std::vector<std::string>{x, *gamma, beta};
  out->op_type = "LayerNormalization";
  out->domain = onnx_opset >= 17 ? "" : names::kDomain;
  out->inputs = inputs;
  out->attributes = {int_attribute("axis", -1), float_attribute("epsilon", *epsilon)};
  remove_matched(g, nodes);
  return true;
}

// Whether `norm` normalizes over the last axis only.
bool over_last_axis(const Graph& g, const Node& norm) {
  const Attribute* axis = norm.find_attr("axis");
  if (!axis || axis->proto->i() == -1) return true;
  const auto dims = known_dims(g, norm.inputs[0]);
  return dims && axis->proto->i() == static_cast<int64_t>(dims->size()) - 1;
}

bool try_fuse_skip(Graph& g, Node& norm) {
  const bool standard = is_op(&norm, "LayerNormalization");
  const bool graft = norm.domain == names::kDomain && norm.op_type == "LayerNormalization";
  if ((!standard && !graft) || norm.inputs.size() < 2 || norm.outputs.size() != 1 ||
      !over_last_axis(g, norm))
    return false;
  if (const Attribute* stash = norm.find_attr("stash_type");
      stash && stash->proto->i() != onnx::TensorProto::FLOAT)
    return false;
  Node* add = g.producer(norm.inputs[0]);
  if (!is_op(add, "Add") || add->inputs.size() != 2) return false;
  // A bias Add after a MatMul is left to the GEMM (fuse_matmul_transpose takes it).
  for (const auto& in : add->inputs) {
    const auto dims = known_dims(g, in);
    if (g.find_initializer(in) && dims && dims->size() <= 1) return false;
  }
  const std::string sum = add->outputs[0];
  const bool sum_read_elsewhere = g.is_graph_output(sum) || g.consumers(sum).size() != 1;
  std::vector<std::string> inputs = {add->inputs[0], add->inputs[1], norm.inputs[1]};
  if (norm.inputs.size() > 2 && !norm.inputs[2].empty()) inputs.push_back(norm.inputs[2]);
  float epsilon = 1e-5f;
  if (const Attribute* e = norm.find_attr("epsilon")) epsilon = e->proto->f();
  norm.op_type = "SkipLayerNormalization";
  norm.domain = names::kDomain;
  norm.inputs = inputs;
  norm.attributes = {float_attribute("epsilon", epsilon)};
  if (sum_read_elsewhere) {
    // The sum keeps its name; the fused node, which comes later, now writes it.
    norm.outputs.push_back(sum);
    g.remove_node(add);
    g.topological_sort();
  } else {
    remove_matched(g, {add});
  }
  return true;
}

}  // namespace

int fuse_layer_norm(Graph& graph, int64_t onnx_opset) {
  int fused = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (try_fuse_decomposed(graph, *graph.nodes[i], onnx_opset)) {
      ++fused;
      i = 0;
    }
  }
  return fused;
}

int fuse_skip_layer_norm(Graph& graph) {
  int fused = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (try_fuse_skip(graph, *graph.nodes[i])) {
      ++fused;
      i = 0;
    }
  }
  return fused;
}

}  // namespace graft::ir
