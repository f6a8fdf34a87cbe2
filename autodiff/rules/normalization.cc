// Gradient rules for the normalizations: batch, layer, instance and group. Training-mode
// BatchNormalization and LayerNormalization have fused com.graft ops whose bodies share the
// standardization steps.
#include <string>

#include "autodiff/rule.h"
#include "autodiff/rules/nn_helpers.h"

namespace graft::autodiff {
namespace {

using namespace rules;

// A per-channel parameter p[C] viewed as [C, 1, ...] against a tensor of rank r.
std::string per_channel(RuleContext& c, const std::string& p, int64_t r) {
  return r > 2 ? c.emit1("Unsqueeze", {p, c.ints_constant(range(1, r - 1))}) : p;
}

// The mean over `axes`, kept as size-1 dims (axes are an input from opset 18).
std::string mean(RuleContext& c, const std::string& v, const Ints& axes) {
  if (c.opset() >= 18)
    return c.emit1("ReduceMean", {v, c.ints_constant(axes)}, {Attr::i("keepdims", 1)});
  return c.emit1("ReduceMean", {v}, {Attr::ints("axes", axes), Attr::i("keepdims", 1)});
}

// x standardized over `axes`: x_hat = (x - mean) * inv_std, inv_std = 1 / sqrt(var + eps).
// `like` is a forward value of x's type.
struct Standardized {
  Ints axes;
  std::string centered, inv_std, x_hat;
};

Standardized standardize(RuleContext& c, const std::string& x, const Ints& axes, float eps,
                         const std::string& like) {
  Standardized s;
  s.axes = axes;
  s.centered = c.emit1("Sub", {x, mean(c, x, axes)});
  std::string var = mean(c, c.emit1("Mul", {s.centered, s.centered}), axes);
  std::string eps_value = c.scalar_like(static_cast<double>(eps), like);
  s.inv_std = c.emit1("Reciprocal", {c.emit1("Sqrt", {c.emit1("Add", {var, eps_value})})});
  s.x_hat = c.emit1("Mul", {s.centered, s.inv_std});
  return s;
}

// dx from d x_hat = g: inv_std * (g - mean(g) - x_hat * mean(g * x_hat)).
std::string standardize_grad(RuleContext& c, const Standardized& s, const std::string& g) {
  std::string mean_gx = mean(c, c.emit1("Mul", {g, s.x_hat}), s.axes);
  std::string t =
      c.emit1("Sub", {c.emit1("Sub", {g, mean(c, g, s.axes)}), c.emit1("Mul", {s.x_hat, mean_gx})});
  return c.emit1("Mul", {s.inv_std, t});
}

// Adds to dx (or "") the gradients reaching the statistics over `count` elements: d mean / dx =
// 1 / count and d var / dx = 2 * (x - mean) / count. One of dmean and dvar may be "".
std::string add_stat_grads(RuleContext& c, const Standardized& s, const std::string& dx,
                           const std::string& count, const std::string& dmean,
                           const std::string& dvar) {
  std::string t;
  if (!dvar.empty())
    t = c.emit1("Mul", {c.emit1("Mul", {s.centered, dvar}), c.scalar_like(2.0, count)});
  if (!dmean.empty()) t = t.empty() ? dmean : c.emit1("Add", {t, dmean});
  std::string g = c.emit1("Expand", {c.emit1("Div", {t, count}), c.emit1("Shape", {s.centered})});
  return dx.empty() ? g : c.emit1("Add", {dx, g});
}

// The steps both fused normalization gradients share, in ONNX text: x_hat and inv_std of X over
// `axes` (the attribute), then dX from g = dY * Scale (g is defined between the two).
constexpr const char* kStandardize = R"ONNX(  ax = Constant <value_ints: ints = @axes> ()
  mean = ReduceMean <keepdims: int = 1> (X, ax)
  centered = Sub (X, mean)
  square = Mul (centered, centered)
  var = ReduceMean <keepdims: int = 1> (square, ax)
  eps = Constant <value_float: float = @epsilon> ()
  eps_like = CastLike (eps, X)
  var_eps = Add (var, eps_like)
  std = Sqrt (var_eps)
  inv_std = Reciprocal (std)
  x_hat = Mul (centered, inv_std)
)ONNX";
constexpr const char* kStandardizeGrad = R"ONNX(  g_mean = ReduceMean <keepdims: int = 1> (g, ax)
  gx = Mul (g, x_hat)
  gx_mean = ReduceMean <keepdims: int = 1> (gx, ax)
  t1 = Sub (g, g_mean)
  t2 = Mul (x_hat, gx_mean)
  t3 = Sub (t1, t2)
  dX = Mul (t3, inv_std)
)ONNX";

// Training-mode BatchNormalization's gradients from dY alone, as the fused com.graft.BatchNormGrad:
// with g = dY * Scale over the batch and spatial `axes`,
//   dX = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)), dScale = sum(dY * x_hat), dB = sum(dY).
const std::string kBatchNormGradBody = std::string(R"ONNX(
<domain: "com.graft", opset_import: ["" : 18]>
BatchNormGrad <axes: ints, epsilon: float = 0.00001> (dY, X, Scale) => (dX, dScale, dB) {
)ONNX") + kStandardize +
                                       R"ONNX(  stat_shape = Shape (mean)
  scale_view = Reshape (Scale, stat_shape)
  g = Mul (dY, scale_view)
)ONNX" + kStandardizeGrad + R"ONNX(  scale_shape = Shape (Scale)
  dy_x_hat = Mul (dY, x_hat)
  dscale_kept = ReduceSum <keepdims: int = 1> (dy_x_hat, ax)
  dScale = Reshape (dscale_kept, scale_shape)
  db_kept = ReduceSum <keepdims: int = 1> (dY, ax)
  dB = Reshape (db_kept, scale_shape)
}
)ONNX";

// Training mode: standardize with the batch statistics, then y = scale * x_hat + b. The running
// statistics blend the inputs with momentum: running = input * momentum + batch * (1 - momentum).
// Inference: y = (x - mean) * scale / sqrt(var + eps) + b.
void batch_norm_grad(RuleContext& c) {
  const std::string &x = c.input(0), &scale = c.input(1);
  const int64_t r = rank_of(c, x);
  const Ints axes = concat({0}, range(2, r));
  const float eps = c.attr_float("epsilon", 1e-5f);
  const bool training = c.attr_int("training_mode", 0) != 0;
  std::string dy = c.output_grad(0);
  if (training && !dy.empty() && c.output_grad(1).empty() && c.output_grad(2).empty()) {
    // The common case, no gradient through the running statistics: one fused op.
    const std::vector<bool> wanted = {c.needs_input_grad(0), c.needs_input_grad(1),
                                      c.needs_input_grad(2)};
    const auto grads = c.emit_fused("BatchNormGrad", {dy, x, scale}, wanted,
                                    {Attr::ints("axes", axes), Attr::f("epsilon", eps)},
                                    kBatchNormGradBody.c_str());
    for (int i = 0; i < 3; ++i) {
      if (wanted[static_cast<size_t>(i)]) c.set_input_grad(i, grads[static_cast<size_t>(i)]);
    }
    return;
  }
  if (training) {
    const Standardized s = standardize(c, x, axes, eps, x);
    std::string dx;
    if (!dy.empty()) {
      if (c.needs_input_grad(0))
        dx = standardize_grad(c, s, c.emit1("Mul", {dy, per_channel(c, scale, r)}));
      grad_if(c, 1, [&] { return sum(c, c.emit1("Mul", {dy, s.x_hat}), axes, false); });
      grad_if(c, 2, [&] { return sum(c, dy, axes, false); });
    }
    const double momentum = c.attr_float("momentum", 0.9f);
    std::string batch_grads[2];  // of the batch mean and variance
    for (int k = 0; k < 2; ++k) {
      std::string running = c.output_grad(1 + k);
      if (running.empty()) continue;
      grad_if(c, 3 + k, [&] {
        return c.emit1("Mul", {running, c.scalar_like(momentum, c.input(3 + k))});
      });
      running = c.emit1("Mul", {running, c.scalar_like(1.0 - momentum, c.input(3 + k))});
      batch_grads[k] = per_channel(c, c.emit1("CastLike", {running, x}), r);
    }
    if (!c.needs_input_grad(0)) return;
    if (!batch_grads[0].empty() || !batch_grads[1].empty())
      dx = add_stat_grads(c, s, dx, count_over(c, x, axes), batch_grads[0], batch_grads[1]);
    if (!dx.empty()) c.set_input_grad(0, dx);
    return;
  }
  if (dy.empty()) return;
  const std::string &mean_in = c.input(3), &var = c.input(4);
  std::string inv_std = c.emit1(
      "Reciprocal",
      {c.emit1("Sqrt", {c.emit1("Add", {var, c.scalar_like(static_cast<double>(eps), var)})})});
  std::string gain = c.emit1("Mul", {scale, inv_std});
  grad_if(c, 0, [&] { return c.emit1("Mul", {dy, per_channel(c, gain, r)}); });
  std::string db = sum(c, dy, axes, false);
  c.set_input_grad(2, db);
  grad_if(c, 3, [&] { return c.emit1("Neg", {c.emit1("Mul", {db, gain})}); });
  if (c.needs_input_grad(1) || c.needs_input_grad(4)) {
    std::string x_hat = c.emit1(
        "Mul", {c.emit1("Sub", {x, per_channel(c, mean_in, r)}), per_channel(c, inv_std, r)});
    std::string dscale = sum(c, c.emit1("Mul", {dy, x_hat}), axes, false);
    c.set_input_grad(1, dscale);
    // d y / d var = -scale * x_hat * inv_std^2 / 2.
    grad_if(c, 4, [&] {
      std::string t = c.emit1("Mul", {c.emit1("Mul", {dscale, gain}), inv_std});
      return c.emit1("Mul", {t, c.scalar_like(-0.5, var)});
    });
  }
}

// dX of LayerNormalization from dY alone, as the fused com.graft.LayerNormGrad:
//   dX = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)),  g = dY * Scale, over `axes`.
const std::string kLayerNormGradBody = std::string(R"ONNX(
<domain: "com.graft", opset_import: ["" : 18]>
LayerNormGrad <axes: ints, epsilon: float = 0.00001> (dY, X, Scale) => (dX, dScale, dB) {
)ONNX") + kStandardize +
                                       R"ONNX(  g = Mul (dY, Scale)
)ONNX" + kStandardizeGrad + R"ONNX(  scale_shape = Shape (Scale)
  minus_one = Constant <value_ints: ints = [-1]> ()
  rows_shape = Concat <axis: int = 0> (minus_one, scale_shape)
  rows = Constant <value_ints: ints = [0]> ()
  dy_x_hat = Mul (dY, x_hat)
  dy_x_hat_rows = Reshape (dy_x_hat, rows_shape)
  dScale = ReduceSum <keepdims: int = 0> (dy_x_hat_rows, rows)
  dy_rows = Reshape (dY, rows_shape)
  dB = ReduceSum <keepdims: int = 0> (dy_rows, rows)
}
)ONNX";

// Standardize over the axes from `axis` on, then y = scale * x_hat + b (broadcast). The optional
// Mean and InvStdDev outputs pass their gradients through the statistics.
void layer_norm_grad(RuleContext& c) {
  const std::string &x = c.input(0), &scale = c.input(1);
  const int64_t axis = c.attr_int("axis", -1);
  const Ints axes = axis < 0 ? range(axis, 0) : range(axis, rank_of(c, x));
  const float eps = c.attr_float("epsilon", 1e-5f);
  std::string dy = c.output_grad(0);
  // The common case, only Y read: one fused op for dX.
  if (!dy.empty() && c.output_grad(1).empty() && c.output_grad(2).empty() &&
      c.needs_input_grad(0)) {
    // dScale and dB come out of the same op when Scale (and B) cover the normalized axes element
    // by element, the op's row layout.
    const auto xs = c.static_shape(x), ss = c.static_shape(scale);
    bool per_element = xs && ss && ss->size() == axes.size();
    for (size_t k = 0; per_element && k < ss->size(); ++k)
      per_element = (*ss)[k] == (*xs)[xs->size() - ss->size() + k];
    if (per_element && c.num_inputs() > 2 && !c.input(2).empty())
      per_element = c.static_shape(c.input(2)) == ss;
    const std::vector<bool> wanted = {true, per_element && c.needs_input_grad(1),
                                      per_element && c.needs_input_grad(2)};
    const auto grads = c.emit_fused("LayerNormGrad", {dy, x, scale}, wanted,
                                    {Attr::ints("axes", axes), Attr::f("epsilon", eps)},
                                    kLayerNormGradBody.c_str());
    c.set_input_grad(0, grads[0]);
    if (wanted[1]) c.set_input_grad(1, grads[1]);
    if (wanted[2]) c.set_input_grad(2, grads[2]);
    if (!per_element && (c.needs_input_grad(1) || c.needs_input_grad(2))) {
      const Standardized s = standardize(c, x, axes, eps, x);
      grad_if(c, 1, [&] { return c.unbroadcast(c.emit1("Mul", {dy, s.x_hat}), scale); });
      grad_if(c, 2, [&] { return c.unbroadcast(dy, c.input(2)); });
    }
    return;
  }
  const Standardized s = standardize(c, x, axes, eps, x);
  std::string dx;
  if (!dy.empty()) {
    if (c.needs_input_grad(0)) dx = standardize_grad(c, s, c.emit1("Mul", {dy, scale}));
    grad_if(c, 1, [&] { return c.unbroadcast(c.emit1("Mul", {dy, s.x_hat}), scale); });
    grad_if(c, 2, [&] { return c.unbroadcast(dy, c.input(2)); });
  }
  if (!c.needs_input_grad(0)) return;
  std::string dmean = c.output_grad(1), dinv = c.output_grad(2), dvar;
  if (!dmean.empty()) dmean = c.emit1("CastLike", {dmean, x});
  if (!dinv.empty()) {
    // d inv_std / d var = -inv_std^3 / 2.
    std::string cube = c.emit1("Mul", {c.emit1("Mul", {s.inv_std, s.inv_std}), s.inv_std});
    dvar = c.emit1(
        "Mul", {c.emit1("Mul", {c.emit1("CastLike", {dinv, x}), cube}), c.scalar_like(-0.5, x)});
  }
  if (!dmean.empty() || !dvar.empty())
    dx = add_stat_grads(c, s, dx, count_over(c, x, axes), dmean, dvar);
  if (!dx.empty()) c.set_input_grad(0, dx);
}

// Standardize each (image, channel) over the spatial axes, then scale and shift per channel.
void instance_norm_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const std::string& x = c.input(0);
  const int64_t r = rank_of(c, x);
  const Standardized s = standardize(c, x, range(2, r), c.attr_float("epsilon", 1e-5f), x);
  grad_if(c, 0, [&] {
    return standardize_grad(c, s, c.emit1("Mul", {dy, per_channel(c, c.input(1), r)}));
  });
  const Ints param_axes = concat({0}, range(2, r));
  grad_if(c, 1, [&] { return sum(c, c.emit1("Mul", {dy, s.x_hat}), param_axes, false); });
  grad_if(c, 2, [&] { return sum(c, dy, param_axes, false); });
}

// Standardize x viewed as [N, groups, -1] over its last axis, then scale and shift per channel
// (opset 21; opset 18's per-group parameters are deprecated and not loaded).
void group_norm_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const std::string &x = c.input(0), &scale = c.input(1);
  const int64_t r = rank_of(c, x);
  const Ints axes = concat({0}, range(2, r));
  std::string grouped = c.ints_constant({0, c.attr_int("num_groups", 1), -1});
  std::string shape = c.emit1("Shape", {x});
  const Standardized s =
      standardize(c, c.emit1("Reshape", {x, grouped}), {2}, c.attr_float("epsilon", 1e-5f), x);
  grad_if(c, 0, [&] {
    std::string g = c.emit1("Reshape", {c.emit1("Mul", {dy, per_channel(c, scale, r)}), grouped});
    return c.emit1("Reshape", {standardize_grad(c, s, g), shape});
  });
  grad_if(c, 1, [&] {
    std::string x_hat = c.emit1("Reshape", {s.x_hat, shape});
    return sum(c, c.emit1("Mul", {dy, x_hat}), axes, false);
  });
  grad_if(c, 2, [&] { return sum(c, dy, axes, false); });
}

}  // namespace

GRAFT_GRADIENT_RULES(normalization) {
  reg.add({"", "BatchNormalization", 14, 1 << 30, &batch_norm_grad});
  reg.add({"", "LayerNormalization", 17, 1 << 30, &layer_norm_grad});
  reg.add({"", "InstanceNormalization", 6, 1 << 30, &instance_norm_grad});
  reg.add({"", "GroupNormalization", 21, 1 << 30, &group_norm_grad});
}

}  // namespace graft::autodiff
