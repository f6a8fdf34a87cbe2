// Gradient rules for reductions: the output gradient is broadcast back over the reduced axes.
#include "autodiff/rule.h"

namespace graft::autodiff {
namespace {

// The output gradient with the reduced axes restored (size 1) and expanded to the input's shape.
// Axes come from the input (ReduceSum from opset 13, the others from 18) or the attribute.
std::string expand_back(RuleContext& c, const std::string& dy, bool axes_from_input) {
  std::string axes;
  if (axes_from_input) {
    axes = c.input(1);
  } else if (!c.attr_ints("axes").empty()) {
    axes = c.ints_constant(c.attr_ints("axes"));
  }
  std::string dy_kept = dy;
  if (c.attr_int("keepdims", 1) == 0 && !axes.empty()) dy_kept = c.emit1("Unsqueeze", {dy, axes});
  // With keepdims=0 and no axes, dy is a scalar and broadcasts as it is.
  return c.emit1("Expand", {dy_kept, c.emit1("Shape", {c.input(0)})});
}

bool axes_input(RuleContext& c, int input_since) {
  return c.opset() >= input_since && c.num_inputs() > 1 && !c.input(1).empty();
}

bool is_noop(RuleContext& c, int input_since) {
  // noop_with_empty_axes with no axes: the op is an identity.
  return c.attr_int("noop_with_empty_axes", 0) != 0 && !axes_input(c, input_since) &&
         c.attr_ints("axes").empty();
}

void reduce_sum_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  if (is_noop(c, 13)) {
    c.set_input_grad(0, dy);
    return;
  }
  c.set_input_grad(0, expand_back(c, dy, axes_input(c, 13)));
}

void reduce_mean_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  if (is_noop(c, 18)) {
    c.set_input_grad(0, dy);
    return;
  }
  std::string spread = expand_back(c, dy, axes_input(c, 18));
  // Each input element contributed 1/count of its output element, count = |x| / |y|.
  std::string count =
      c.emit1("Div", {c.emit1("Size", {c.input(0)}), c.emit1("Size", {c.output(0)})});
  c.set_input_grad(0, c.emit1("Div", {spread, c.emit1("CastLike", {count, dy})}));
}

}  // namespace

GRAFT_GRADIENT_RULES(reduction) {
  reg.add({"", "ReduceSum", 1, 1 << 30, &reduce_sum_grad});
  reg.add({"", "ReduceMean", 1, 1 << 30, &reduce_mean_grad});
}

}  // namespace graft::autodiff
