// Gradient rules for neural-network ops: Softmax and LogSoftmax, Conv and ConvTranspose, and
// pooling (the normalizations are in normalization.cc).
#include <algorithm>
#include <cstdint>
#include <optional>

#include "autodiff/rule.h"
#include "autodiff/rules/nn_helpers.h"
#include "onnx/onnx_pb.h"

namespace graft::autodiff {
namespace {

using namespace rules;

std::optional<Ints> spatial(RuleContext& c, const std::string& v) {
  auto s = c.static_shape(v);
  if (!s || s->size() < 2) return std::nullopt;
  return Ints(s->begin() + 2, s->end());
}

// Crops the spatial axes of `v` (from axis 2) to `ends`, a constant or a shape value.
std::string crop(RuleContext& c, const std::string& v, size_t n, const std::string& ends) {
  return c.emit1("Slice", {v, c.ints_constant(Ints(n, 0)), ends,
                           c.ints_constant(range(2, 2 + static_cast<int64_t>(n)))});
}

// y = softmax(x): dx = y * (dy - sum(dy * y, axis)), as the fused com.graft.SoftmaxGrad.
constexpr const char* kSoftmaxGradBody = R"ONNX(
<domain: "com.graft", opset_import: ["" : 18]>
SoftmaxGrad <axis: int = -1> (dY, Y) => (dX) {
  axis_scalar = Constant <value_int: int = @axis> ()
  zero = Constant <value_ints: ints = [0]> ()
  axes = Unsqueeze (axis_scalar, zero)
  product = Mul (dY, Y)
  dot = ReduceSum <keepdims: int = 1> (product, axes)
  centered = Sub (dY, dot)
  dX = Mul (Y, centered)
}
)ONNX";

void softmax_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  c.set_input_grad(0, c.emit_fused("SoftmaxGrad", {dy, c.output(0)},
                                   {Attr::i("axis", c.attr_int("axis", -1))}, kSoftmaxGradBody));
}

// y = log_softmax(x): dx = dy - exp(y) * sum(dy, axis).
void log_softmax_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  std::string total = sum(c, dy, {c.attr_int("axis", -1)}, true);
  std::string p = c.emit1("Exp", {c.output(0)});
  c.set_input_grad(0, c.emit1("Sub", {dy, c.emit1("Mul", {p, total})}));
}

// The window of a map from a long tensor L to a short one S, along each spatial axis:
// S[o] reads L[o * stride - begin + k * dilation] for the kernel taps k. Conv and pooling map X
// to Y; ConvTranspose is the adjoint of such a map from Y to X. `end` only fixes lengths.
struct Window {
  Ints kernel, strides, dilations, begin, end;
  std::optional<Ints> len, out;  // static spatial dims of L and S
  std::string same;              // auto_pad SAME_* left to run time (begin, end are then 0)
  size_t rank() const { return kernel.size(); }
  int64_t extent(size_t i) const { return (kernel[i] - 1) * dilations[i] + 1; }
  bool is_static() const { return len && out; }
};

Ints attr_or(RuleContext& c, const std::string& name, size_t n, int64_t fill) {
  Ints v = c.attr_ints(name);
  if (v.empty()) v.assign(n, fill);
  if (v.size() != n) c.fail(name + " does not match the " + std::to_string(n) + " spatial dims");
  return v;
}

Ints kernel_of(RuleContext& c, const std::string& w) {
  Ints k = c.attr_ints("kernel_shape");
  auto s = c.static_shape(w);
  if (k.empty() && s) k.assign(s->begin() + 2, s->end());
  if (k.empty()) c.fail("needs the kernel shape (kernel_shape or a static weight shape)");
  return k;
}

// The node's strides, dilations and pads (zero under auto_pad VALID) for `kernel`.
Window read_window(RuleContext& c, const Ints& kernel) {
  const size_t n = kernel.size();
  Window w;
  w.kernel = kernel;
  w.strides = attr_or(c, "strides", n, 1);
  w.dilations = attr_or(c, "dilations", n, 1);
  const Ints pads = attr_or(c, "pads", 2 * n, 0);
  w.begin.assign(pads.begin(), pads.begin() + n);
  w.end.assign(pads.begin() + n, pads.end());
  if (c.attr_string("auto_pad", "NOTSET") == "VALID") w.begin = w.end = Ints(n, 0);
  return w;
}

// The window of a Conv or pooling node over x, auto_pad resolved and the output dims computed as
// the kernels do (ceil_mode drops a last window that would start in the end padding).
Window forward_window(RuleContext& c, const Ints& kernel, const std::string& x) {
  const size_t n = kernel.size();
  Window w = read_window(c, kernel);
  w.len = spatial(c, x);
  const std::string auto_pad = c.attr_string("auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    if (!w.len) w.same = auto_pad;
    for (size_t i = 0; w.len && i < n; ++i) {
      const int64_t len = (*w.len)[i], out = (len + w.strides[i] - 1) / w.strides[i];
      const int64_t total = std::max<int64_t>(0, (out - 1) * w.strides[i] + w.extent(i) - len);
      w.begin[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      w.end[i] = total - w.begin[i];
    }
  }
  if (!w.len) return w;
  w.out.emplace(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t span = (*w.len)[i] + w.begin[i] + w.end[i] - w.extent(i), s = w.strides[i];
    int64_t& out = (*w.out)[i];
    out = span / s + 1;
    if (c.attr_int("ceil_mode", 0) != 0 && span % s != 0 && out * s < (*w.len)[i] + w.begin[i])
      ++out;
  }
  return w;
}

// The pads [0, 0, begins..., 0, 0, ends...] of x under auto_pad SAME_*, computed at run time as
// the kernels do: total = max(0, (ceil(len / stride) - 1) * stride + extent - len).
std::string same_pads(RuleContext& c, const Window& w, const std::string& x) {
  Ints extent;
  for (size_t i = 0; i < w.rank(); ++i) extent.push_back(w.extent(i));
  std::string len = dims(c, x, 2), s = c.ints_constant(w.strides), one = c.ints_constant({1});
  std::string out = c.emit1("Div", {c.emit1("Sub", {c.emit1("Add", {len, s}), one}), s});
  std::string reach =
      c.emit1("Add", {c.emit1("Mul", {c.emit1("Sub", {out, one}), s}), c.ints_constant(extent)});
  std::string total =
      c.emit1("Max", {c.emit1("Sub", {reach, len}), c.ints_constant(Ints(w.rank(), 0))});
  std::string small = c.emit1("Div", {total, c.ints_constant({2})});
  std::string large = c.emit1("Sub", {total, small});
  const bool upper = w.same == "SAME_UPPER";
  std::string zeros = c.ints_constant({0, 0});
  return c.emit1("Concat", {zeros, upper ? small : large, zeros, upper ? large : small},
                 {Attr::i("axis", 0)});
}

// The spatial part of `padded` that lies over x, undoing Pad(x, pads).
std::string unpad(RuleContext& c, const std::string& padded, const std::string& pads,
                  const std::string& x, size_t n) {
  const int64_t n2 = static_cast<int64_t>(n) + 2;
  std::string begins = c.emit1("Slice", {pads, c.ints_constant({2}), c.ints_constant({n2})});
  std::string ends = c.emit1("Add", {begins, dims(c, x, 2)});
  return c.emit1("Slice", {padded, begins, ends, c.ints_constant(range(2, n2))});
}

// The spatial dims of S: constants when known, else read from `s` at run time.
std::string out_dims(RuleContext& c, const Window& w, const std::string& s) {
  return w.out ? c.ints_constant(*w.out) : dims(c, s, 2);
}

std::vector<Attr> window_attrs(const Window& w, int64_t group, const Ints& end) {
  return {Attr::ints("strides", w.strides), Attr::ints("dilations", w.dilations),
          Attr::i("group", group), Attr::ints("pads", concat(w.begin, end))};
}

// The adjoint of the window map applied to `s` (shaped like S): a ConvTranspose with weights `w`
// whose spatial dims are made those of L (output_padding, or cropping a ceil_mode overhang); those
// dims come as the value `l_dims` when the window is not static.
std::string to_long(RuleContext& c, const std::string& s, const std::string& w, int64_t group,
                    const Window& win, const std::string& l_dims) {
  const size_t n = win.rank();
  if (win.is_static()) {
    Ints end = win.end, extra(n, 0);
    for (size_t i = 0; i < n; ++i) {
      const int64_t natural =
          win.strides[i] * ((*win.out)[i] - 1) + win.extent(i) - win.begin[i] - win.end[i];
      const int64_t missing = (*win.len)[i] - natural;
      if (missing >= 0)
        extra[i] = missing;
      else
        end[i] -= missing;
    }
    std::vector<Attr> attrs = window_attrs(win, group, end);
    attrs.push_back(Attr::ints("output_padding", extra));
    return c.emit1("ConvTranspose", {s, w}, attrs);
  }
  // Dims known at run time only: no end padding, zeros past the end, then crop.
  std::string t = c.emit1("ConvTranspose", {s, w}, window_attrs(win, group, Ints(n, 0)));
  if (std::any_of(win.strides.begin(), win.strides.end(), [](int64_t v) { return v > 1; })) {
    Ints pads(2 * n + 4, 0);
    for (size_t i = 0; i < n; ++i) pads[n + 4 + i] = win.strides[i] - 1;
    t = c.emit1("Pad", {t, c.ints_constant(pads)});
  }
  return crop(c, t, n, l_dims);
}

// The window map applied to `l` (shaped like L) with weights `w`, cropped to the spatial dims of
// `s_like`.
std::string to_short(RuleContext& c, const std::string& l, const std::string& w, int64_t group,
                     const Window& win, const std::string& s_like) {
  const size_t n = win.rank();
  Ints end(n);
  bool exact = win.is_static();
  for (size_t i = 0; i < n; ++i) {
    end[i] = std::max<int64_t>(win.end[i], 0);
    if (exact) {
      const int64_t span = (*win.len)[i] + win.begin[i] + end[i] - win.extent(i);
      exact = span / win.strides[i] + 1 == (*win.out)[i];
    }
  }
  std::string t = c.emit1("Conv", {l, w}, window_attrs(win, group, end));
  return exact ? t : crop(c, t, n, dims(c, s_like, 2));
}

// The weight gradient of the window map: per group, out[q, p, k] = sum over images and positions
// o of small[q, o] * big[p, o * stride - begin + k * dilation]. That is a Conv of big (as
// [P, G * N, ...]) by small (as [G * Q, N, ...]) with stride and dilation swapped; the result
// [P, G * Q, k...] is transposed to [G * Q, P, k...].
std::string correlate(RuleContext& c, const std::string& big, const std::string& small,
                      int64_t group, const Window& win, const std::string& x) {
  const size_t n = win.rank();
  Ints swap = concat({1, 0}, range(2, 2 + static_cast<int64_t>(n)));
  std::string b;
  if (group == 1) {
    b = c.emit1("Transpose", {big}, {Attr::ints("perm", swap)});
  } else {
    std::string sp = win.len ? c.ints_constant(*win.len) : dims(c, big, 2);
    std::string split = c.emit1("Concat", {dims(c, x, 0, 1), c.ints_constant({group, -1}), sp},
                                {Attr::i("axis", 0)});
    b = c.emit1("Reshape", {big, split});
    b = c.emit1("Transpose", {b},
                {Attr::ints("perm", concat({2, 1, 0}, range(3, 3 + static_cast<int64_t>(n))))});
    std::string merged = c.emit1("Concat", {c.ints_constant({0, -1}), sp}, {Attr::i("axis", 0)});
    b = c.emit1("Reshape", {b, merged});
  }
  std::string s = c.emit1("Transpose", {small}, {Attr::ints("perm", swap)});
  Ints end(n);
  bool exact = win.is_static();
  for (size_t i = 0; i < n; ++i) {
    end[i] = win.end[i];
    if (win.is_static()) {
      // Trim the end padding so that exactly the kernel's taps come out.
      const int64_t full =
          (*win.len)[i] + win.begin[i] + win.end[i] - win.strides[i] * ((*win.out)[i] - 1) - 1;
      end[i] -= full - (win.kernel[i] - 1) * win.dilations[i];
    }
    if (end[i] < 0) exact = false;
    end[i] = std::max<int64_t>(end[i], 0);
  }
  Window swapped = win;
  std::swap(swapped.strides, swapped.dilations);
  std::string t = c.emit1("Conv", {b, s}, window_attrs(swapped, group, end));
  if (!exact) t = crop(c, t, n, c.ints_constant(win.kernel));
  return c.emit1("Transpose", {t}, {Attr::ints("perm", swap)});
}

// All three gradients of a float 2-D convolution without groups, as the fused com.graft.ConvGrad
// (graft runs oneDNN's backward primitives for it). The body: dX is the transposed convolution
// of dY with W over the padded input, zero-extended at the end by one stride (input rows no window
// reached) and cropped to X past the begin padding; dW correlates X with dY, the batch axis taking
// the channel's place (strides and dilations swap roles); dB sums dY.
constexpr const char* kConvGradBody = R"ONNX(
<domain: "com.graft", opset_import: ["" : 18]>
ConvGrad <strides: ints, pads: ints, dilations: ints> (dY, X, W) => (dX, dW, dB) {
  zeros = Constant <value_ints: ints = [0, 0]> ()
  zeros6 = Constant <value_ints: ints = [0, 0, 0, 0, 0, 0]> ()
  two = Constant <value_ints: ints = [2]> ()
  four = Constant <value_ints: ints = [4]> ()
  spatial_axes = Constant <value_ints: ints = [2, 3]> ()
  full = ConvTranspose <strides: ints = @strides, dilations: ints = @dilations> (dY, W)
  stride = Constant <value_ints: ints = @strides> ()
  end_pads = Concat <axis: int = 0> (zeros6, stride)
  padded = Pad (full, end_pads)
  all_pads = Constant <value_ints: ints = @pads> ()
  begin, unused_end = Split <num_outputs: int = 2> (all_pads)
  x_shape = Shape (X)
  x_spatial = Slice (x_shape, two, four)
  end = Add (begin, x_spatial)
  dX = Slice (padded, begin, end, spatial_axes)
  xt = Transpose <perm: ints = [1, 0, 2, 3]> (X)
  dyt = Transpose <perm: ints = [1, 0, 2, 3]> (dY)
  wt = Conv <strides: ints = @dilations, dilations: ints = @strides, pads: ints = @pads> (xt, dyt)
  w_shape = Shape (W)
  kernel = Slice (w_shape, two, four)
  wt_kernel = Slice (wt, zeros, kernel, spatial_axes)
  dW = Transpose <perm: ints = [1, 0, 2, 3]> (wt_kernel)
  bias_axes = Constant <value_ints: ints = [0, 2, 3]> ()
  dB = ReduceSum <keepdims: int = 0> (dY, bias_axes)
}
)ONNX";

// y = conv(x, w) + b: dx = conv_transpose(dy, w), dw = correlation of x with dy, db = sum(dy).
void conv_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const int64_t group = c.attr_int("group", 1);
  const Window win = forward_window(c, kernel_of(c, c.input(1)), c.input(0));
  const int64_t n = static_cast<int64_t>(win.rank());
  if (n == 2 && group == 1 && win.same.empty() && c.static_rank(c.input(0)) == 4 &&
      c.elem_type(c.input(0)) == onnx::TensorProto::FLOAT) {
    const std::vector<bool> wanted = {c.needs_input_grad(0), c.needs_input_grad(1),
                                      c.num_inputs() > 2 && c.needs_input_grad(2)};
    const auto grads =
        c.emit_fused("ConvGrad", {dy, c.input(0), c.input(1)}, wanted,
                     {Attr::ints("strides", win.strides), Attr::ints("dilations", win.dilations),
                      Attr::ints("pads", concat(win.begin, win.end))},
                     kConvGradBody);
    for (int i = 0; i < 3; ++i) {
      if (wanted[static_cast<size_t>(i)]) c.set_input_grad(i, grads[static_cast<size_t>(i)]);
    }
    return;
  }
  // Under auto_pad SAME_* with dims known at run time only, x is padded explicitly.
  std::string x = c.input(0), pads;
  if (!win.same.empty()) {
    pads = same_pads(c, win, x);
    x = c.emit1("Pad", {x, pads});
  }
  grad_if(c, 0, [&] {
    std::string dx = to_long(c, dy, c.input(1), group, win, win.is_static() ? "" : dims(c, x, 2));
    return pads.empty() ? dx : unpad(c, dx, pads, c.input(0), win.rank());
  });
  grad_if(c, 1, [&] { return correlate(c, x, dy, group, win, c.input(0)); });
  grad_if(c, 2, [&] { return sum(c, dy, concat({0}, range(2, 2 + n)), false); });
}

// y = conv_transpose(x, w) + b, the adjoint of a conv from y to x: dx = conv(dy, w), dw =
// correlation of dy with x, db = sum(dy).
void conv_transpose_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const int64_t group = c.attr_int("group", 1);
  const std::string& x = c.input(0);
  const Ints kernel = kernel_of(c, c.input(1));
  const size_t n = kernel.size();
  Window win = read_window(c, kernel);
  win.out = spatial(c, x);
  const Ints out_pad = attr_or(c, "output_padding", n, 0);
  const std::string auto_pad = c.attr_string("auto_pad", "NOTSET");
  Ints requested = c.attr_ints("output_shape");
  if (requested.size() == n + 2) requested.erase(requested.begin(), requested.begin() + 2);
  const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  if (!requested.empty() && !win.out)
    c.fail("output_shape needs the static spatial dims of the input");
  // The begin part of a total padding under auto_pad SAME_*, as the kernel splits it.
  auto same_begin = [&](int64_t total) {
    const int64_t half = total >= 0 ? total / 2 : -((1 - total) / 2);
    return auto_pad == "SAME_UPPER" ? half : total - half;
  };
  for (size_t i = 0; same && !win.out && i < n; ++i) {
    // The output is input * stride: the total padding does not depend on the input.
    const int64_t total = out_pad[i] + win.extent(i) - win.strides[i];
    win.begin[i] = same_begin(total);
    win.end[i] = total - out_pad[i] - win.begin[i];
  }
  if (win.out) {
    // The output dims and the split of the padding, as the ConvTranspose kernel makes them;
    // output_padding becomes part of the end padding.
    win.len.emplace(n);
    for (size_t i = 0; i < n; ++i) {
      const int64_t in = (*win.out)[i], s = win.strides[i];
      const int64_t full = s * (in - 1) + out_pad[i] + win.extent(i);
      int64_t& len = (*win.len)[i];
      if (same) {
        len = requested.empty() ? in * s : requested[i];
        win.begin[i] = same_begin(full - len);
      } else {
        len = requested.empty() ? full - win.begin[i] - win.end[i] : requested[i];
      }
      win.end[i] = full - out_pad[i] - win.begin[i] - len;
    }
  }
  if (std::any_of(win.begin.begin(), win.begin.end(), [](int64_t v) { return v < 0; }))
    c.fail("negative begin padding is not supported");
  grad_if(c, 0, [&] { return to_short(c, dy, c.input(1), group, win, x); });
  grad_if(c, 1, [&] { return correlate(c, dy, x, group, win, x); });
  grad_if(c, 2,
          [&] { return sum(c, dy, concat({0}, range(2, 2 + static_cast<int64_t>(n))), false); });
}

// y = max over each window: dy goes to the argmax, found from the Indices output (flat
// positions in x) or a recomputation, and scatter-added into zeros.
// dX of a 2-D MaxPool from dY, as the fused com.graft.MaxPoolGrad: the body recomputes the argmax
// indices (flat over the whole tensor) and scatter-adds dY there.
constexpr const char* kMaxPoolGradBody = R"ONNX(
<domain: "com.graft", opset_import: ["" : 18]>
MaxPoolGrad <kernel_shape: ints, strides: ints, pads: ints, dilations: ints, ceil_mode: int = 0> (dY, X) => (dX) {
  pooled, indices = MaxPool <kernel_shape: ints = @kernel_shape, strides: ints = @strides, pads: ints = @pads, dilations: ints = @dilations, ceil_mode: int = @ceil_mode> (X)
  flat = Constant <value_ints: ints = [-1]> ()
  x_flat = Reshape (X, flat)
  count = Shape (x_flat)
  zero = Constant <value_float: float = 0.0> ()
  zero_like = CastLike (zero, X)
  zeros = Expand (zero_like, count)
  indices_flat = Reshape (indices, flat)
  dy_flat = Reshape (dY, flat)
  scattered = ScatterElements <axis: int = 0, reduction: string = "add"> (zeros, indices_flat, dy_flat)
  x_shape = Shape (X)
  dX = Reshape (scattered, x_shape)
}
)ONNX";

void max_pool_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const std::string& x = c.input(0);
  const Ints kernel = c.attr_ints("kernel_shape");
  if (c.opset() >= 16 && kernel.size() == 2 && c.static_rank(x) == 4 &&
      c.attr_int("storage_order", 0) == 0 && c.attr_string("auto_pad", "NOTSET") == "NOTSET") {
    const Window w = read_window(c, kernel);
    c.set_input_grad(
        0, c.emit_fused(
               "MaxPoolGrad", {dy, x},
               {Attr::ints("kernel_shape", kernel), Attr::ints("strides", w.strides),
                Attr::ints("pads", concat(w.begin, w.end)), Attr::ints("dilations", w.dilations),
                Attr::i("ceil_mode", c.attr_int("ceil_mode", 0))},
               kMaxPoolGradBody));
    return;
  }
  std::string indices;
  if (c.num_outputs() > 1 && !c.output(1).empty() && c.attr_int("storage_order", 0) == 0) {
    indices = c.output(1);
  } else {
    indices = c.emit("MaxPool", {x}, 2,
                     Attr::copy(c.node(), {"auto_pad", "ceil_mode", "dilations", "kernel_shape",
                                           "pads", "strides"}))[1];
  }
  std::vector<Attr> attrs = {Attr::i("axis", 0)};
  if (c.opset() >= 16) {
    attrs.push_back(Attr::s("reduction", "add"));
  } else {
    const Ints kernel = c.attr_ints("kernel_shape");
    const Window w = forward_window(c, kernel, x);
    for (size_t i = 0; i < kernel.size(); ++i) {
      if (w.strides[i] < w.extent(i))
        c.fail("overlapping windows need ScatterElements with reduction (opset 16)");
    }
  }
  std::string flat = c.ints_constant({-1});
  std::string zeros =
      c.emit1("Expand", {c.scalar_like(0.0, x), c.emit1("Reshape", {c.emit1("Size", {x}), flat})});
  std::string dx =
      c.emit1("ScatterElements",
              {zeros, c.emit1("Reshape", {indices, flat}), c.emit1("Reshape", {dy, flat})}, attrs);
  c.set_input_grad(0, c.emit1("Reshape", {dx, c.emit1("Shape", {x})}));
}

// y = window sums of x over each window's count (taps inside x, or inside the padded x with
// count_include_pad): dx = conv_transpose(dy / count) with a ones kernel, image and channel
// folded into one batch axis. Counts vary near the borders; a conv of ones computes them.
void average_pool_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const std::string& x = c.input(0);
  const Window win = forward_window(c, c.attr_ints("kernel_shape"), x);
  const size_t n = win.rank();
  const bool ceil = c.attr_int("ceil_mode", 0) != 0;
  const bool with_pads = c.attr_int("count_include_pad", 0) != 0;
  bool constant =
      with_pads ||
      (win.same.empty() &&
       std::all_of(win.begin.begin(), win.begin.end(), [](int64_t v) { return v == 0; }) &&
       std::all_of(win.end.begin(), win.end.end(), [](int64_t v) { return v == 0; }));
  int64_t taps = 1;
  for (size_t i = 0; i < n; ++i) {
    taps *= win.kernel[i];
    if (ceil) {
      // A last window reaching past the padded input counts fewer taps.
      constant = constant && win.is_static() &&
                 win.strides[i] * ((*win.out)[i] - 1) + win.extent(i) <=
                     (*win.len)[i] + win.begin[i] + win.end[i];
    }
  }
  // Under auto_pad SAME_* with dims known at run time only, x is seen as padded explicitly.
  std::string pads, long_dims = win.is_static() ? "" : dims(c, x, 2);
  if (!win.same.empty()) {
    pads = same_pads(c, win, x);
    const int64_t n2 = static_cast<int64_t>(n) + 2;
    std::string begins = c.emit1("Slice", {pads, c.ints_constant({2}), c.ints_constant({n2})});
    std::string ends = c.emit1("Slice", {pads, c.ints_constant({n2 + 2}), c.ints_constant({kEnd})});
    long_dims = c.emit1("Add", {long_dims, c.emit1("Add", {begins, ends})});
  }
  std::string one = c.scalar_like(1.0, x);
  std::string ones_kernel = c.emit1("Expand", {one, c.ints_constant(concat({1, 1}, win.kernel))});
  std::string scaled;
  if (constant) {
    scaled = c.emit1("Div", {dy, c.scalar_like(static_cast<double>(taps), x)});
  } else {
    std::string ones = c.emit1(
        "Expand",
        {one, c.emit1("Concat", {c.ints_constant({1, 1}), dims(c, x, 2)}, {Attr::i("axis", 0)})});
    if (!pads.empty()) ones = c.emit1("Pad", {ones, pads});
    Window count_win = win;
    for (size_t i = 0; i < n; ++i) count_win.end[i] += ceil ? win.strides[i] - 1 : 0;
    if (with_pads) {
      std::string static_pads =
          c.ints_constant(concat(concat({0, 0}, win.begin), concat({0, 0}, win.end)));
      ones = c.emit1("Pad", {ones, static_pads, one});
      count_win.begin = Ints(n, 0);
      for (size_t i = 0; i < n; ++i) count_win.end[i] -= win.end[i];
    }
    std::string count =
        c.emit1("Conv", {ones, ones_kernel}, window_attrs(count_win, 1, count_win.end));
    if (ceil) count = crop(c, count, n, out_dims(c, win, dy));
    scaled = c.emit1("Div", {dy, count});
  }
  std::string folded = c.emit1(
      "Reshape", {scaled, c.emit1("Concat", {c.ints_constant({-1, 1}), out_dims(c, win, dy)},
                                  {Attr::i("axis", 0)})});
  std::string dx = to_long(c, folded, ones_kernel, 1, win, long_dims);
  if (pads.empty()) {
    c.set_input_grad(0, c.emit1("Reshape", {dx, c.emit1("Shape", {x})}));
    return;
  }
  std::string padded_shape = c.emit1("Concat", {dims(c, x, 0, 2), long_dims}, {Attr::i("axis", 0)});
  dx = c.emit1("Reshape", {dx, padded_shape});
  c.set_input_grad(0, unpad(c, dx, pads, x, n));
}

// y = mean over the spatial axes: dx = dy / count, broadcast.
void global_average_pool_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const std::string& x = c.input(0);
  std::string spread = c.emit1("Expand", {dy, c.emit1("Shape", {x})});
  c.set_input_grad(0, c.emit1("Div", {spread, count_over(c, x, range(2, rank_of(c, x)))}));
}

// y = max over the spatial axes: dx = dy where x equals the max.
void global_max_pool_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const std::string& x = c.input(0);
  std::string at_max = c.emit1("Equal", {x, c.output(0)});
  c.set_input_grad(0, c.emit1("Where", {at_max, dy, c.scalar_like(0.0, x)}));
}

}  // namespace

GRAFT_GRADIENT_RULES(nn) {
  reg.add({"", "Softmax", 13, 1 << 30, &softmax_grad});
  reg.add({"", "LogSoftmax", 13, 1 << 30, &log_softmax_grad});
  reg.add({"", "Conv", 1, 1 << 30, &conv_grad});
  reg.add({"", "ConvTranspose", 1, 1 << 30, &conv_transpose_grad});
  reg.add({"", "MaxPool", 1, 1 << 30, &max_pool_grad});
  reg.add({"", "AveragePool", 1, 1 << 30, &average_pool_grad});
  reg.add({"", "GlobalAveragePool", 1, 1 << 30, &global_average_pool_grad});
  reg.add({"", "GlobalMaxPool", 1, 1 << 30, &global_max_pool_grad});
}

}  // namespace graft::autodiff
