// Helpers shared by the elementwise gradient rules (math.cc, activation.cc).
#pragma once

#include <string>

#include "autodiff/rule.h"

namespace graft::autodiff::rules {

// dx for y = f(x), given dy (never empty).
using Derivative = std::string (*)(RuleContext& c, const std::string& dy);

// The rule of a one-input op whose gradient is F(dy).
template <Derivative F>
void unary(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (!dy.empty() && c.needs_input_grad(0)) c.set_input_grad(0, F(c, dy));
}

// A scalar of the output's type.
inline std::string k(RuleContext& c, double value) { return c.scalar_like(value, c.output(0)); }

inline std::string mul(RuleContext& c, const std::string& a, const std::string& b) {
  return c.emit1("Mul", {a, b});
}

inline std::string add(RuleContext& c, const std::string& a, const std::string& b) {
  return c.emit1("Add", {a, b});
}

}  // namespace graft::autodiff::rules
