// Gradient rules for the reductions beyond ReduceSum/ReduceMean. Each is written on the
// keepdims=1 views of y and dy, which broadcast against x. Axes come from input 1 (opset 18) or
// the axes attribute (13-17); helper reductions repeat the forward node's form, so the result
// is valid at the model's opset. With noop_with_empty_axes and no axes these ops apply their
// elementwise part only (y = x^2 for ReduceSumSquare); the same formulas cover that case.
#include "autodiff/rule.h"

namespace graft::autodiff {
namespace {

bool axes_from_input(RuleContext& c) {
  return c.opset() >= 18 && c.num_inputs() > 1 && !c.input(1).empty();
}

// The reduced axes as an int64 1-D value; "" when every axis is reduced.
std::string axes_value(RuleContext& c) {
  if (axes_from_input(c)) return c.input(1);
  std::vector<int64_t> axes = c.attr_ints("axes");
  return axes.empty() ? "" : c.ints_constant(axes);
}

// `v` (shaped like y) with the reduced axes restored as size 1.
std::string kept(RuleContext& c, const std::string& v) {
  std::string axes = axes_value(c);
  if (c.attr_int("keepdims", 1) != 0 || axes.empty()) return v;
  return c.emit1("Unsqueeze", {v, axes});
}

// `op` over the forward node's axes, keepdims=1.
std::string reduce_kept(RuleContext& c, const std::string& op, const std::string& v) {
  std::vector<Attr> attrs = Attr::copy(c.node(), {"noop_with_empty_axes"});
  attrs.push_back(Attr::i("keepdims", 1));
  if (op == "ReduceSum") {
    std::string axes = axes_value(c);
    return c.emit1(op, axes.empty() ? std::vector<std::string>{v} : std::vector{v, axes}, attrs);
  }
  if (axes_from_input(c)) return c.emit1(op, {v, c.input(1)}, attrs);
  for (auto& a : Attr::copy(c.node(), {"axes"})) attrs.push_back(a);
  return c.emit1(op, {v}, attrs);
}

std::string scalar(RuleContext& c, double value) { return c.scalar_like(value, c.input(0)); }

// ReduceMax/ReduceMin: dy goes to the positions equal to the extreme, split evenly among ties.
std::string extreme_grad(RuleContext& c, const std::string& dy) {
  const std::string& x = c.input(0);
  std::string hit = c.emit1(
      "Where", {c.emit1("Equal", {x, kept(c, c.output(0))}), scalar(c, 1.0), scalar(c, 0.0)});
  std::string ties = reduce_kept(c, "ReduceSum", hit);
  return c.emit1("Div", {c.emit1("Mul", {dy, hit}), ties});
}

// ReduceProd: dx_i = prod_{j != i} x_j, that is y / x_i where x_i != 0; at a zero x_i it is
// the product of the other elements when x_i is the only zero, else 0.
std::string prod_grad(RuleContext& c, const std::string& dy) {
  const std::string& x = c.input(0);
  std::string one = scalar(c, 1.0), zero = scalar(c, 0.0);
  std::string is_zero = c.emit1("Equal", {x, zero});
  std::string safe_x = c.emit1("Where", {is_zero, one, x});
  std::string zeros = reduce_kept(c, "ReduceSum", c.emit1("Where", {is_zero, one, zero}));
  std::string others = reduce_kept(c, "ReduceProd", safe_x);
  std::string at_zero = c.emit1("Where", {c.emit1("Equal", {zeros, one}), others, zero});
  std::string elsewhere = c.emit1("Div", {kept(c, c.output(0)), safe_x});
  return c.emit1("Mul", {dy, c.emit1("Where", {is_zero, at_zero, elsewhere})});
}

// ReduceL1: dx = dy * sign(x).
std::string l1_grad(RuleContext& c, const std::string& dy) {
  return c.emit1("Mul", {dy, c.emit1("Sign", {c.input(0)})});
}

// ReduceL2: dx = dy * x / y (0 where y = 0).
std::string l2_grad(RuleContext& c, const std::string& dy) {
  std::string y = kept(c, c.output(0)), zero = scalar(c, 0.0);
  std::string ratio = c.emit1("Div", {c.input(0), y});
  return c.emit1("Mul", {dy, c.emit1("Where", {c.emit1("Equal", {y, zero}), zero, ratio})});
}

// ReduceLogSumExp: dx = dy * exp(x - y) (the softmax over the reduced axes).
std::string log_sum_exp_grad(RuleContext& c, const std::string& dy) {
  std::string shifted = c.emit1("Sub", {c.input(0), kept(c, c.output(0))});
  return c.emit1("Mul", {dy, c.emit1("Exp", {shifted})});
}

// ReduceLogSum: dx = dy / sum(x) = dy / exp(y), broadcast over the reduced axes.
std::string log_sum_grad(RuleContext& c, const std::string& dy) {
  std::string g = c.emit1("Div", {dy, c.emit1("Exp", {kept(c, c.output(0))})});
  return c.emit1("Expand", {g, c.emit1("Shape", {c.input(0)})});
}

// ReduceSumSquare: dx = 2 * dy * x.
std::string sum_square_grad(RuleContext& c, const std::string& dy) {
  return c.emit1("Mul", {dy, c.emit1("Mul", {c.input(0), scalar(c, 2.0)})});
}

template <std::string (*Local)(RuleContext&, const std::string&)>
void reduce_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty() || !c.needs_input_grad(0)) return;
  c.set_input_grad(0, Local(c, kept(c, dy)));
}

}  // namespace

GRAFT_GRADIENT_RULES(reduce_more) {
  reg.add({"", "ReduceMax", 13, 1 << 30, &reduce_grad<extreme_grad>});
  reg.add({"", "ReduceMin", 13, 1 << 30, &reduce_grad<extreme_grad>});
  reg.add({"", "ReduceProd", 13, 1 << 30, &reduce_grad<prod_grad>});
  reg.add({"", "ReduceL1", 13, 1 << 30, &reduce_grad<l1_grad>});
  reg.add({"", "ReduceL2", 13, 1 << 30, &reduce_grad<l2_grad>});
  reg.add({"", "ReduceLogSumExp", 13, 1 << 30, &reduce_grad<log_sum_exp_grad>});
  reg.add({"", "ReduceLogSum", 13, 1 << 30, &reduce_grad<log_sum_grad>});
  reg.add({"", "ReduceSumSquare", 13, 1 << 30, &reduce_grad<sum_square_grad>});
}

}  // namespace graft::autodiff
