// Gradient rules for activation functions. Piecewise functions take the gradient of the piece
// that holds x, with the breakpoints assigned as PyTorch does (x > 0 is the positive piece).
#include <numbers>

#include "autodiff/rule.h"
#include "autodiff/rules/unary_helpers.h"

namespace graft::autodiff {
namespace {

using rules::add;
using rules::k;
using rules::mul;
using rules::unary;

// 1 - t^2
std::string one_minus_square(RuleContext& c, const std::string& t) {
  return c.emit1("Sub", {k(c, 1.0), mul(c, t, t)});
}

std::string positive(RuleContext& c) { return c.emit1("Greater", {c.input(0), k(c, 0.0)}); }

// dx = dy * (1 - y^2)
std::string tanh_dx(RuleContext& c, const std::string& dy) {
  return mul(c, dy, one_minus_square(c, c.output(0)));
}

// dx = dy * y * (1 - y)
std::string sigmoid_dx(RuleContext& c, const std::string& dy) {
  const std::string& y = c.output(0);
  return mul(c, dy, mul(c, y, c.emit1("Sub", {k(c, 1.0), y})));
}

// dx = dy for x > 0, alpha * dy otherwise.
std::string leaky_relu_dx(RuleContext& c, const std::string& dy) {
  std::string alpha = k(c, c.attr_float("alpha", 0.01f));
  return c.emit1("Where", {positive(c), dy, mul(c, dy, alpha)});
}

// y = alpha * (exp(x) - 1) for x <= 0: dx = dy * (y + alpha) there, dy above.
std::string elu_dx(RuleContext& c, const std::string& dy) {
  std::string alpha = k(c, c.attr_float("alpha", 1.0f));
  return c.emit1("Where", {positive(c), dy, mul(c, dy, add(c, c.output(0), alpha))});
}

// y = gamma * x for x > 0, gamma * alpha * (exp(x) - 1) otherwise: dx = gamma * dy, or
// dy * (y + gamma * alpha).
std::string selu_dx(RuleContext& c, const std::string& dy) {
  const float alpha = c.attr_float("alpha", 1.67326319217681884765625f);
  const float gamma = c.attr_float("gamma", 1.05070102214813232421875f);
  std::string below = mul(c, dy, add(c, c.output(0), k(c, double{gamma} * double{alpha})));
  return c.emit1("Where", {positive(c), mul(c, dy, k(c, gamma)), below});
}

// y = alpha * (exp(x / alpha) - 1) for x <= 0: dx = dy * (y / alpha + 1) there, dy above.
std::string celu_dx(RuleContext& c, const std::string& dy) {
  const float alpha = c.attr_float("alpha", 1.0f);
  std::string slope = add(c, mul(c, c.output(0), k(c, 1.0 / double{alpha})), k(c, 1.0));
  return c.emit1("Where", {positive(c), dy, mul(c, dy, slope)});
}

// dx = dy * sigmoid(x)
std::string softplus_dx(RuleContext& c, const std::string& dy) {
  return mul(c, dy, c.emit1("Sigmoid", {c.input(0)}));
}

// dx = dy / (1 + |x|)^2
std::string softsign_dx(RuleContext& c, const std::string& dy) {
  std::string d = add(c, k(c, 1.0), c.emit1("Abs", {c.input(0)}));
  return c.emit1("Div", {dy, mul(c, d, d)});
}

// y = clamp(alpha * x + beta, 0, 1): dx = alpha * dy where 0 < y < 1.
std::string hard_sigmoid_dx(RuleContext& c, const std::string& dy) {
  const std::string& y = c.output(0);
  std::string inside =
      c.emit1("And", {c.emit1("Greater", {y, k(c, 0.0)}), c.emit1("Less", {y, k(c, 1.0)})});
  std::string alpha = k(c, c.attr_float("alpha", 0.2f));
  return c.emit1("Where", {inside, mul(c, dy, alpha), k(c, 0.0)});
}

// y = x * clamp(x / 6 + 1/2, 0, 1): dx = 0 for x < -3, dy for x > 3, dy * (x / 3 + 1/2) between.
std::string hard_swish_dx(RuleContext& c, const std::string& dy) {
  const std::string& x = c.input(0);
  std::string middle = add(c, mul(c, x, k(c, 1.0 / 3.0)), k(c, 0.5));
  std::string slope = c.emit1("Where", {c.emit1("Greater", {x, k(c, 3.0)}), k(c, 1.0), middle});
  slope = c.emit1("Where", {c.emit1("Less", {x, k(c, -3.0)}), k(c, 0.0), slope});
  return mul(c, dy, slope);
}

// y = x * tanh(softplus(x)): dx = dy * (t + x * (1 - t^2) * sigmoid(x)), t = tanh(softplus(x)).
std::string mish_dx(RuleContext& c, const std::string& dy) {
  const std::string& x = c.input(0);
  std::string t = c.emit1("Tanh", {c.emit1("Softplus", {x})});
  std::string rest = mul(c, mul(c, x, one_minus_square(c, t)), c.emit1("Sigmoid", {x}));
  return mul(c, dy, add(c, t, rest));
}

// dx = dy where x > alpha.
std::string thresholded_relu_dx(RuleContext& c, const std::string& dy) {
  std::string above = c.emit1("Greater", {c.input(0), k(c, c.attr_float("alpha", 1.0f))});
  return c.emit1("Where", {above, dy, k(c, 0.0)});
}

// Exact: dx = dy * (Phi(x) + x * phi(x)), Phi(x) = (1 + erf(x / sqrt 2)) / 2, phi the normal
// density. Tanh form, y = x / 2 * (1 + tanh(u)), u = sqrt(2 / pi) * (x + 0.044715 x^3):
// dx = dy * ((1 + t) / 2 + x / 2 * (1 - t^2) * sqrt(2 / pi) * (1 + 3 * 0.044715 x^2)).
std::string gelu_dx(RuleContext& c, const std::string& dy) {
  const std::string& x = c.input(0);
  const double sqrt_2_over_pi = std::numbers::sqrt2 * std::numbers::inv_sqrtpi;
  std::string x2 = mul(c, x, x), slope;
  if (c.attr_string("approximate", "none") == "tanh") {
    constexpr double kCubic = 0.044715;
    std::string inner = add(c, k(c, 1.0), mul(c, x2, k(c, kCubic)));
    std::string t = c.emit1("Tanh", {mul(c, mul(c, x, inner), k(c, sqrt_2_over_pi))});
    std::string du = add(c, k(c, 1.0), mul(c, x2, k(c, 3.0 * kCubic)));
    std::string tail = mul(c, mul(c, x, one_minus_square(c, t)), du);
    slope = mul(c, add(c, add(c, k(c, 1.0), t), mul(c, tail, k(c, sqrt_2_over_pi))), k(c, 0.5));
  } else {
    std::string erf = c.emit1("Erf", {mul(c, x, k(c, 1.0 / std::numbers::sqrt2))});
    std::string cdf = mul(c, add(c, k(c, 1.0), erf), k(c, 0.5));
    std::string pdf = mul(c, c.emit1("Exp", {mul(c, x2, k(c, -0.5))}), k(c, sqrt_2_over_pi * 0.5));
    slope = add(c, cdf, mul(c, x, pdf));
  }
  return mul(c, dy, slope);
}

// y = x for x > 0, slope * x otherwise (slope broadcast to x): dx = dy or dy * slope,
// dslope = dy * x where x <= 0, summed over the axes slope was broadcast along.
void prelu_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const std::string &x = c.input(0), &slope = c.input(1);
  std::string pos = positive(c);
  if (c.needs_input_grad(0)) c.set_input_grad(0, c.emit1("Where", {pos, dy, mul(c, dy, slope)}));
  if (c.needs_input_grad(1)) {
    std::string ds = c.emit1("Where", {pos, k(c, 0.0), mul(c, dy, x)});
    c.set_input_grad(1, c.unbroadcast(ds, slope));
  }
}

}  // namespace

GRAFT_GRADIENT_RULES(activation) {
  reg.add({"", "Tanh", 6, 1 << 30, &unary<tanh_dx>});
  reg.add({"", "Sigmoid", 6, 1 << 30, &unary<sigmoid_dx>});
  reg.add({"", "LeakyRelu", 6, 1 << 30, &unary<leaky_relu_dx>});
  reg.add({"", "Elu", 6, 1 << 30, &unary<elu_dx>});
  reg.add({"", "Selu", 6, 1 << 30, &unary<selu_dx>});
  reg.add({"", "Celu", 12, 1 << 30, &unary<celu_dx>});
  reg.add({"", "Softplus", 1, 1 << 30, &unary<softplus_dx>});
  reg.add({"", "Softsign", 1, 1 << 30, &unary<softsign_dx>});
  reg.add({"", "HardSigmoid", 6, 1 << 30, &unary<hard_sigmoid_dx>});
  reg.add({"", "HardSwish", 14, 1 << 30, &unary<hard_swish_dx>});
  reg.add({"", "Mish", 18, 1 << 30, &unary<mish_dx>});
  reg.add({"", "ThresholdedRelu", 10, 1 << 30, &unary<thresholded_relu_dx>});
  reg.add({"", "PRelu", 6, 1 << 30, &prelu_grad});
  reg.add({"", "Gelu", 20, 1 << 30, &unary<gelu_dx>});
}

}  // namespace graft::autodiff
