// GELU exported as elementwise steps becomes one node. The exporters write the erf form as
// Div(x, sqrt 2) (or Mul by 1 / sqrt 2) -> Erf -> Add 1, and the tanh form as
// Pow(x, 3) (or x * x * x) -> Mul 0.044715 -> Add x -> Mul sqrt(2 / pi) -> Tanh -> Add 1; both
// end in the product of x, 0.5 and that sum, as two Muls in any order.
#include <numbers>

#include "ir/names.h"
#include "ir/transforms/fusion_match.h"
#include "ir/transforms/transformer_fusions.h"

namespace graft::ir {
namespace {

// A Mul reading `value` and a scalar `expected`, read by no one else: its other operand.
const std::string* scaled_by(const Graph& g, const Node* mul, const std::string& value,
                             double expected) {
  if (!is_op(mul, "Mul")) return nullptr;
  const std::string* other = other_operand(*mul, value);
  return other && is_scalar(g, *other, expected) ? other : nullptr;
}

// x^3 as Pow(x, 3), Mul(x, Mul(x, x)) or Mul(Mul(x, x), x): x, with the nodes, or nullptr.
const std::string* cube_of(const Graph& g, const std::string& value,
                           std::vector<const Node*>& nodes) {
  const Node* p = g.producer(value);
  if (is_op(p, "Pow") && p->inputs.size() == 2 && is_scalar(g, p->inputs[1], 3.0)) {
    nodes.push_back(p);
    return &p->inputs[0];
  }
  if (!is_op(p, "Mul") || p->inputs.size() != 2) return nullptr;
  for (int side = 0; side < 2; ++side) {
    const Node* sq = g.producer(p->inputs[side]);
    const std::string& x = p->inputs[1 - side];
    if (is_op(sq, "Mul") && sq->inputs.size() == 2 && sq->inputs[0] == x && sq->inputs[1] == x &&
        sole_reader(g, sq->outputs[0]) == p) {
      nodes.push_back(p);
      nodes.push_back(sq);
      return &x;
    }
  }
  return nullptr;
}

// The argument x of erf(x / sqrt 2) computed by `div`, or nullptr.
const std::string* erf_argument(const Graph& g, const Node* div) {
  if (is_op(div, "Div") && div->inputs.size() == 2 &&
      is_scalar(g, div->inputs[1], std::numbers::sqrt2))
    return &div->inputs[0];
  if (!is_op(div, "Mul") || div->inputs.size() != 2) return nullptr;
  for (int side = 0; side < 2; ++side) {
    if (is_scalar(g, div->inputs[side], 1.0 / std::numbers::sqrt2)) return &div->inputs[1 - side];
  }
  return nullptr;
}

// The argument x of tanh(sqrt(2 / pi) * (x + 0.044715 x^3)) computed by `scale`, or nullptr.
const std::string* tanh_argument(const Graph& g, const Node* scale,
                                 std::vector<const Node*>& nodes) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  if (!is_op(scale, "Mul") || scale->inputs.size() != 2) return nullptr;
  for (int side = 0; side < 2; ++side) {
    if (!is_scalar(g, scale->inputs[side], k)) continue;
    const Node* sum = g.producer(scale->inputs[1 - side]);
    if (!is_op(sum, "Add") || sum->inputs.size() != 2 || sole_reader(g, sum->outputs[0]) != scale)
      continue;
    for (int term = 0; term < 2; ++term) {
      const Node* cubic = g.producer(sum->inputs[term]);
      const std::string& x = sum->inputs[1 - term];
      if (!is_op(cubic, "Mul") || cubic->inputs.size() != 2 ||
          sole_reader(g, cubic->outputs[0]) != sum)
        continue;
      for (int c = 0; c < 2; ++c) {
        if (!is_scalar(g, cubic->inputs[c], 0.044715)) continue;
        std::vector<const Node*> found = {sum, cubic};
        const std::string* base = cube_of(g, cubic->inputs[1 - c], found);
        if (!base || *base != x || sole_reader(g, found[2]->outputs[0]) != cubic) continue;
        nodes.insert(nodes.end(), found.begin(), found.end());
        return &x;
      }
    }
  }
  return nullptr;
}

// From `one_plus` = 1 + erf(...) or 1 + tanh(...): the node computing 0.5 * x * one_plus, with
// the nodes between them appended to `nodes`; nullptr when the product is not there.
Node* half_product(const Graph& g, const std::string& one_plus, const std::string& x,
                   std::vector<const Node*>& nodes) {
  Node* m1 = sole_reader(g, one_plus);
  if (!is_op(m1, "Mul")) return nullptr;
  const std::string* other = other_operand(*m1, one_plus);
  if (!other) return nullptr;
  if (*other == x || is_scalar(g, *other, 0.5)) {
    // (x * s) * 0.5 or (0.5 * s) * x.
    Node* m2 = sole_reader(g, m1->outputs[0]);
    if (!is_op(m2, "Mul")) return nullptr;
    const std::string* last = other_operand(*m2, m1->outputs[0]);
    if (!last || (*other == x ? !is_scalar(g, *last, 0.5) : *last != x)) return nullptr;
    nodes.push_back(m1);
    return m2;
  }
  // (x * 0.5) * s.
  const Node* half = g.producer(*other);
  if (!scaled_by(g, half, x, 0.5) || sole_reader(g, half->outputs[0]) != m1) return nullptr;
  nodes.push_back(half);
  return m1;
}

bool try_fuse(Graph& g, const Node& act, int64_t onnx_opset) {
  const bool erf = is_op(&act, "Erf");
  if ((!erf && !is_op(&act, "Tanh")) || act.inputs.size() != 1) return false;
  const Node* arg = g.producer(act.inputs[0]);
  if (!arg || sole_reader(g, arg->outputs[0]) != &act) return false;
  std::vector<const Node*> nodes = {arg, &act};
  const std::string* x = erf ? erf_argument(g, arg) : tanh_argument(g, arg, nodes);
  if (!x) return false;
  const Node* add = sole_reader(g, act.outputs[0]);
  const std::string* one = add && is_op(add, "Add") ? other_operand(*add, act.outputs[0]) : nullptr;
  if (!one || !is_scalar(g, *one, 1.0)) return false;
  nodes.push_back(add);
  Node* out = half_product(g, add->outputs[0], *x, nodes);
  if (!out) return false;
  const std::string input = *x;
  out->op_type = "Gelu";
  out->domain = onnx_opset >= 20 ? "" : names::kDomain;
  out->inputs = {input};
  out->attributes.clear();
  if (!erf) out->attributes.push_back(string_attribute("approximate", "tanh"));
  remove_matched(g, nodes);
  return true;
}

}  // namespace

int fuse_gelu(Graph& graph, int64_t onnx_opset) {
  int fused = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (try_fuse(graph, *graph.nodes[i], onnx_opset)) {
      ++fused;
      i = 0;  // nodes before i were removed
    }
  }
  return fused;
}

}  // namespace graft::ir
