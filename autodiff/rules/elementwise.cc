// Gradient rules for broadcasting arithmetic and simple elementwise functions.
#include "autodiff/rule.h"

namespace graft::autodiff {
namespace {

void add_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  for (int i = 0; i < 2; ++i) {
    if (c.needs_input_grad(i)) c.set_input_grad(i, c.unbroadcast(dy, c.input(i)));
  }
}

void sub_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  if (c.needs_input_grad(0)) c.set_input_grad(0, c.unbroadcast(dy, c.input(0)));
  if (c.needs_input_grad(1)) c.set_input_grad(1, c.unbroadcast(c.emit1("Neg", {dy}), c.input(1)));
}

void mul_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  if (c.needs_input_grad(0))
    c.set_input_grad(0, c.unbroadcast(c.emit1("Mul", {dy, c.input(1)}), c.input(0)));
  if (c.needs_input_grad(1))
    c.set_input_grad(1, c.unbroadcast(c.emit1("Mul", {dy, c.input(0)}), c.input(1)));
}

// y = a / b: da = dy / b, db = -dy * y / b.
void div_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  if (c.needs_input_grad(0))
    c.set_input_grad(0, c.unbroadcast(c.emit1("Div", {dy, c.input(1)}), c.input(0)));
  if (c.needs_input_grad(1)) {
    std::string t = c.emit1("Div", {c.emit1("Mul", {dy, c.output(0)}), c.input(1)});
    c.set_input_grad(1, c.unbroadcast(c.emit1("Neg", {t}), c.input(1)));
  }
}

void neg_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (!dy.empty()) c.set_input_grad(0, c.emit1("Neg", {dy}));
}

void identity_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (!dy.empty()) c.set_input_grad(0, dy);
}

// y = relu(x): dx = dy where y > 0.
// dx = dy where y > 0, else 0: the fused com.graft.ReluGrad.
constexpr const char* kReluGradBody = R"ONNX(
<domain: "com.graft", opset_import: ["" : 18]>
ReluGrad (dY, Y) => (dX) {
  zero = Constant <value_float: float = 0.0> ()
  zero_like = CastLike (zero, Y)
  positive = Greater (Y, zero_like)
  dX = Where (positive, dY, zero_like)
}
)ONNX";

void relu_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  c.set_input_grad(0, c.emit_fused("ReluGrad", {dy, c.output(0)}, {}, kReluGradBody));
}

// Sum of N broadcast inputs.
void sum_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  for (int i = 0; i < c.num_inputs(); ++i) {
    if (c.needs_input_grad(i)) c.set_input_grad(i, c.unbroadcast(dy, c.input(i)));
  }
}

}  // namespace

GRAFT_GRADIENT_RULES(elementwise) {
  reg.add({"", "Add", 7, 1 << 30, &add_grad});
  reg.add({"", "Sub", 7, 1 << 30, &sub_grad});
  reg.add({"", "Mul", 7, 1 << 30, &mul_grad});
  reg.add({"", "Div", 7, 1 << 30, &div_grad});
  reg.add({"", "Neg", 6, 1 << 30, &neg_grad});
  reg.add({"", "Identity", 1, 1 << 30, &identity_grad});
  reg.add({"", "Relu", 6, 1 << 30, &relu_grad});
  reg.add({"", "Sum", 8, 1 << 30, &sum_grad});
}

}  // namespace graft::autodiff
