// Gradient rules for elementwise math: unary functions, Pow, Clip, the variadic Min/Max/Mean,
// Where and the casts. Ops whose gradient is zero almost everywhere get explicit zeros.
#include <numbers>

#include "autodiff/rule.h"
#include "autodiff/rules/unary_helpers.h"
#include "onnx/onnx_pb.h"

namespace graft::autodiff {
namespace {

using rules::k;
using rules::mul;
using rules::unary;

// dx = dy / (2 y)
std::string sqrt_dx(RuleContext& c, const std::string& dy) {
  return c.emit1("Div", {mul(c, dy, k(c, 0.5)), c.output(0)});
}

// dx = dy * y
std::string exp_dx(RuleContext& c, const std::string& dy) { return mul(c, dy, c.output(0)); }

// dx = dy / x
std::string log_dx(RuleContext& c, const std::string& dy) {
  return c.emit1("Div", {dy, c.input(0)});
}

// dx = dy * 2 / sqrt(pi) * exp(-x^2)
std::string erf_dx(RuleContext& c, const std::string& dy) {
  const std::string& x = c.input(0);
  std::string bell = c.emit1("Exp", {c.emit1("Neg", {mul(c, x, x)})});
  return mul(c, dy, mul(c, bell, k(c, 2.0 * std::numbers::inv_sqrtpi)));
}

// dx = dy * sign(x): zero at x = 0.
std::string abs_dx(RuleContext& c, const std::string& dy) {
  return mul(c, dy, c.emit1("Sign", {c.input(0)}));
}

// dx = -dy * y^2
std::string reciprocal_dx(RuleContext& c, const std::string& dy) {
  const std::string& y = c.output(0);
  return c.emit1("Neg", {mul(c, dy, mul(c, y, y))});
}

// dx = dy * cos(x)
std::string sin_dx(RuleContext& c, const std::string& dy) {
  return mul(c, dy, c.emit1("Cos", {c.input(0)}));
}

// dx = -dy * sin(x)
std::string cos_dx(RuleContext& c, const std::string& dy) {
  return c.emit1("Neg", {mul(c, dy, c.emit1("Sin", {c.input(0)}))});
}

// Piecewise-constant functions (Sign, Floor, Ceil, Round): zeros shaped like x.
std::string zero_dx(RuleContext& c, const std::string&) {
  const std::string& x = c.input(0);
  return c.emit1("Expand", {c.scalar_like(0.0, x), c.emit1("Shape", {x})});
}

// y = a^b: da = dy * b * a^(b-1) (0 where b = 0), db = dy * y * log(a) (0 where a = 0 and
// b >= 0), as PyTorch defines the two limits.
void pow_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const std::string &a = c.input(0), &b = c.input(1), &y = c.output(0);
  std::string zero = k(c, 0.0);
  if (c.needs_input_grad(0)) {
    // The exponent may be an integer tensor (Pow-12 and later); before CastLike (opset 15) it is
    // taken to have the base's type.
    std::string bf = c.opset() >= 15 ? c.emit1("CastLike", {b, a}) : b;
    std::string slope = mul(c, bf, c.emit1("Pow", {a, c.emit1("Sub", {bf, k(c, 1.0)})}));
    std::string da = c.emit1("Where", {c.emit1("Equal", {bf, zero}), zero, mul(c, dy, slope)});
    c.set_input_grad(0, c.unbroadcast(da, a));
  }
  if (c.needs_input_grad(1)) {
    std::string flat = c.emit1("And", {c.emit1("Equal", {a, zero}),
                                       c.emit1("GreaterOrEqual", {b, c.scalar_like(0.0, b)})});
    std::string slope = mul(c, y, c.emit1("Log", {a}));
    std::string db = c.emit1("Where", {flat, zero, mul(c, dy, slope)});
    c.set_input_grad(1, c.unbroadcast(db, b));
  }
}

// y = min(max(x, lo), hi), bounds as inputs (Clip-11; older models arrive converted). x passes
// the gradient where lo < x < hi; lo gets it where it binds (x < lo, lo < hi), hi where it binds
// (max(x, lo) > hi, which covers lo > hi: y = hi). Ties at a bound pass nothing.
void clip_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const std::string &x = c.input(0), &lo = c.input(1), &hi = c.input(2);
  std::string zero = k(c, 0.0), dz = dy;
  if (!hi.empty()) {
    std::string z = lo.empty() ? x : c.emit1("Max", {x, lo});
    if (c.needs_input_grad(2)) {
      std::string dhi = c.emit1("Where", {c.emit1("Greater", {z, hi}), dy, zero});
      c.set_input_grad(2, c.unbroadcast(dhi, hi));
    }
    dz = c.emit1("Where", {c.emit1("Less", {z, hi}), dy, zero});
  }
  std::string dx = dz;
  if (!lo.empty()) {
    if (c.needs_input_grad(1)) {
      std::string dlo = c.emit1("Where", {c.emit1("Less", {x, lo}), dz, zero});
      c.set_input_grad(1, c.unbroadcast(dlo, lo));
    }
    dx = c.emit1("Where", {c.emit1("Greater", {x, lo}), dz, zero});
  }
  if (c.needs_input_grad(0)) c.set_input_grad(0, dx);
}

// y = max(x_1, ..., x_n) (or min): the gradient goes to the inputs equal to y, split evenly
// among ties (PyTorch's rule for maximum/minimum and amax/amin).
void extremum_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const std::string& y = c.output(0);
  if (c.num_inputs() == 1) {
    c.set_input_grad(0, dy);
    return;
  }
  std::string zero = k(c, 0.0), one = k(c, 1.0);
  std::vector<std::string> hits, ties;
  for (int i = 0; i < c.num_inputs(); ++i) {
    hits.push_back(c.emit1("Equal", {c.input(i), y}));
    ties.push_back(c.emit1("Where", {hits.back(), one, zero}));
  }
  std::string share = c.emit1("Div", {dy, c.emit1("Sum", ties)});
  for (int i = 0; i < c.num_inputs(); ++i) {
    if (!c.needs_input_grad(i)) continue;
    std::string dx = c.emit1("Where", {hits[static_cast<size_t>(i)], share, zero});
    c.set_input_grad(i, c.unbroadcast(dx, c.input(i)));
  }
}

// y = (x_1 + ... + x_n) / n: dx_i = dy / n, summed over x_i's broadcast axes.
void mean_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  std::string share = c.emit1("Div", {dy, k(c, c.num_inputs())});
  for (int i = 0; i < c.num_inputs(); ++i) {
    if (c.needs_input_grad(i)) c.set_input_grad(i, c.unbroadcast(share, c.input(i)));
  }
}

// y = where(cond, a, b): da = dy where cond, db = dy elsewhere; cond gets none.
void where_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const std::string& cond = c.input(0);
  std::string zero = k(c, 0.0);
  if (c.needs_input_grad(1))
    c.set_input_grad(1, c.unbroadcast(c.emit1("Where", {cond, dy, zero}), c.input(1)));
  if (c.needs_input_grad(2))
    c.set_input_grad(2, c.unbroadcast(c.emit1("Where", {cond, zero, dy}), c.input(2)));
}

bool is_float_type(int64_t t) {
  return t == onnx::TensorProto::FLOAT || t == onnx::TensorProto::DOUBLE ||
         t == onnx::TensorProto::FLOAT16 || t == onnx::TensorProto::BFLOAT16;
}

// The gradient is cast back to the input's type; a cast to a non-float type stops it.
void cast_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty() || !c.needs_input_grad(0) || !is_float_type(c.attr_int("to", 0))) return;
  if (c.opset() < 15) c.fail("needs opset 15 or later (CastLike, to cast the gradient back)");
  c.set_input_grad(0, c.emit1("CastLike", {dy, c.input(0)}));
}

// CastLike(x, like): the gradient is cast back to x's type; `like` only lends its type.
void cast_like_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (!dy.empty() && c.needs_input_grad(0))
    c.set_input_grad(0, c.emit1("CastLike", {dy, c.input(0)}));
}

}  // namespace

GRAFT_GRADIENT_RULES(math) {
  reg.add({"", "Sqrt", 6, 1 << 30, &unary<sqrt_dx>});
  reg.add({"", "Exp", 6, 1 << 30, &unary<exp_dx>});
  reg.add({"", "Log", 6, 1 << 30, &unary<log_dx>});
  reg.add({"", "Erf", 9, 1 << 30, &unary<erf_dx>});
  reg.add({"", "Abs", 6, 1 << 30, &unary<abs_dx>});
  reg.add({"", "Reciprocal", 6, 1 << 30, &unary<reciprocal_dx>});
  reg.add({"", "Sin", 7, 1 << 30, &unary<sin_dx>});
  reg.add({"", "Cos", 7, 1 << 30, &unary<cos_dx>});
  reg.add({"", "Sign", 9, 1 << 30, &unary<zero_dx>});
  reg.add({"", "Floor", 6, 1 << 30, &unary<zero_dx>});
  reg.add({"", "Ceil", 6, 1 << 30, &unary<zero_dx>});
  reg.add({"", "Round", 11, 1 << 30, &unary<zero_dx>});
  reg.add({"", "Pow", 7, 1 << 30, &pow_grad});
  reg.add({"", "Clip", 11, 1 << 30, &clip_grad});
  reg.add({"", "Min", 6, 1 << 30, &extremum_grad});
  reg.add({"", "Max", 6, 1 << 30, &extremum_grad});
  reg.add({"", "Mean", 6, 1 << 30, &mean_grad});
  reg.add({"", "Where", 9, 1 << 30, &where_grad});
  reg.add({"", "Cast", 6, 1 << 30, &cast_grad});
  reg.add({"", "CastLike", 15, 1 << 30, &cast_like_grad});
}

}  // namespace graft::autodiff
