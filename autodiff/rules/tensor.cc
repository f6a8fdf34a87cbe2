// Gradient rules for shape and data-movement ops: the gradient moves back to where each element
// came from, summed where one element fed several outputs (Gather, Tile, Expand).
#include <algorithm>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "autodiff/rule.h"
#include "onnx/onnx_pb.h"

namespace graft::autodiff {
namespace {

// Shape(v) as an int64 1-D tensor: a constant when shape inference knows every dimension.
std::string shape_of(RuleContext& c, const std::string& v) {
  if (auto s = c.static_shape(v)) return c.ints_constant(*s);
  return c.emit1("Shape", {v});
}

std::string zeros_like(RuleContext& c, const std::string& v) {
  return c.emit1("Expand", {c.scalar_like(0.0, v), shape_of(c, v)});
}

std::string int_scalar(RuleContext& c, int64_t value) {
  return c.emit1("Squeeze", {c.ints_constant({value})});
}

// v reshaped to [-1, v.shape[count:]]: its first `count` axes merged into one.
std::string flatten_leading(RuleContext& c, const std::string& v, int64_t count) {
  std::string rest = c.emit1("Slice", {c.emit1("Shape", {v}), c.ints_constant({count}),
                                       c.ints_constant({std::numeric_limits<int64_t>::max()})});
  return c.emit1("Reshape",
                 {v, c.emit1("Concat", {c.ints_constant({-1}), rest}, {Attr::i("axis", 0)})});
}

int64_t normalized_axis(RuleContext& c, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1)) c.fail("axis out of range");
  return axis < 0 ? axis + rank : axis;
}

void require_scatter_add(RuleContext& c) {
  if (c.opset() < 16) c.fail("needs opset 16 or later (ScatterElements/ScatterND reduction='add')");
}

// Reshape, Flatten, Squeeze, Unsqueeze: dx = reshape(dy, shape(x)).
void reshape_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty() || !c.needs_input_grad(0)) return;
  std::vector<Attr> attrs;
  if (c.opset() >= 14) attrs.push_back(Attr::i("allowzero", 1));
  c.set_input_grad(0, c.emit1("Reshape", {dy, shape_of(c, c.input(0))}, attrs));
}

// dx = transpose(dy, inverse(perm)); the default perm (reversal) is its own inverse.
void transpose_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  std::vector<int64_t> perm = c.attr_ints("perm"), inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    if (perm[i] < 0 || perm[i] >= int64_t(perm.size())) c.fail("perm is not a permutation");
    inverse[static_cast<size_t>(perm[i])] = int64_t(i);
  }
  std::vector<Attr> attrs;
  if (!perm.empty()) attrs.push_back(Attr::ints("perm", inverse));
  c.set_input_grad(0, c.emit1("Transpose", {dy}, attrs));
}

// dy is split back into the inputs' extents along the axis.
void concat_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const int64_t axis = c.attr_int("axis", 0);
  std::vector<int64_t> sizes;
  for (int i = 0; i < c.num_inputs(); ++i) {
    auto s = c.static_shape(c.input(i));
    if (!s) break;
    sizes.push_back((*s)[static_cast<size_t>(normalized_axis(c, axis, int64_t(s->size())))]);
  }
  std::string split;
  if (sizes.size() == size_t(c.num_inputs())) {
    split = c.ints_constant(sizes);
  } else {
    std::vector<std::string> extents;
    for (int i = 0; i < c.num_inputs(); ++i) {
      extents.push_back(
          c.emit1("Gather", {c.emit1("Shape", {c.input(i)}), c.ints_constant({axis})}));
    }
    split = c.emit1("Concat", extents, {Attr::i("axis", 0)});
  }
  auto parts = c.emit("Split", {dy, split}, c.num_inputs(), {Attr::i("axis", axis)});
  for (int i = 0; i < c.num_inputs(); ++i) c.set_input_grad(i, parts[static_cast<size_t>(i)]);
}

// dx = concat of the output gradients, zeros for outputs no gradient reaches.
void split_grad(RuleContext& c) {
  std::vector<std::string> parts;
  bool any = false;
  for (int i = 0; i < c.num_outputs(); ++i) {
    std::string g = c.output_grad(i);
    any = any || !g.empty();
    parts.push_back(g.empty() ? zeros_like(c, c.output(i)) : g);
  }
  if (!any || !c.needs_input_grad(0)) return;
  c.set_input_grad(0, c.emit1("Concat", parts, {Attr::i("axis", c.attr_int("axis", 0))}));
}

// Slicing the flat positions of x the way x was sliced gives, for each dy element, its
// position in x; dy is scattered there into zeros (any starts, ends, axes and steps).
void slice_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty() || !c.needs_input_grad(0)) return;
  const std::string& x = c.input(0);
  std::string shape = shape_of(c, x), flat = c.ints_constant({-1});
  std::string count = c.emit1("Size", {x});
  std::string positions =
      c.emit1("Reshape", {c.emit1("Range", {int_scalar(c, 0), count, int_scalar(c, 1)}), shape});
  std::vector<std::string> slice_inputs = {positions};
  for (int i = 1; i < c.num_inputs(); ++i) slice_inputs.push_back(c.input(i));
  std::string taken = c.emit1("Reshape", {c.emit1("Slice", slice_inputs), flat});
  std::string zeros = c.emit1("Reshape", {zeros_like(c, x), flat});
  std::string dx = c.emit1("ScatterElements", {zeros, taken, c.emit1("Reshape", {dy, flat})});
  c.set_input_grad(0, c.emit1("Reshape", {dx, shape}));
}

// y = x.take(indices, axis): dy viewed as [x.shape[:axis], n, x.shape[axis+1:]] is
// scatter-added along the axis at the indices, which are broadcast over the other axes.
void gather_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty() || !c.needs_input_grad(0)) return;
  const std::string &x = c.input(0), &indices = c.input(1);
  int64_t axis = c.attr_int("axis", 0);
  // A constant scalar index (selecting one slice, as in q, k, v = qkv[0], qkv[1], qkv[2]): the
  // gradient is dy put back in its slice by a zero Pad, with no index tensor to scatter by.
  const auto xs = c.static_shape(x);
  const auto constant_index = c.constant_ints(indices);
  if (xs && constant_index && constant_index->size() == 1 && c.static_rank(indices) == 0) {
    const int64_t rank = static_cast<int64_t>(xs->size());
    if (axis < 0) axis += rank;
    const int64_t n = (*xs)[static_cast<size_t>(axis)];
    const int64_t i = (*constant_index)[0] < 0 ? (*constant_index)[0] + n : (*constant_index)[0];
    if (i >= 0 && i < n) {
      std::vector<int64_t> pads(static_cast<size_t>(2 * rank), 0);
      pads[static_cast<size_t>(axis)] = i;
      pads[static_cast<size_t>(rank + axis)] = n - 1 - i;
      const std::string slice = c.emit1("Unsqueeze", {dy, c.ints_constant({axis})});
      c.set_input_grad(0, c.emit1("Pad", {slice, c.ints_constant(pads)}));
      return;
    }
  }
  require_scatter_add(c);
  const int64_t end = std::numeric_limits<int64_t>::max();
  std::string shape = c.emit1("Shape", {x}), minus_one = c.ints_constant({-1});
  std::string head = c.emit1("Slice", {shape, c.ints_constant({0}), c.ints_constant({axis})});
  std::string tail =
      c.emit1("Slice", {c.emit1("Slice", {shape, c.ints_constant({axis}), c.ints_constant({end})}),
                        c.ints_constant({1}), c.ints_constant({end})});
  std::string dy_3 =
      c.emit1("Reshape", {dy, c.emit1("Concat", {head, minus_one, tail}, {Attr::i("axis", 0)})});
  auto ones = [&](const std::string& dims) {
    return c.emit1("ConstantOfShape", {c.emit1("Shape", {dims})},
                   {Attr::scalar_tensor("value", onnx::TensorProto::INT64, 1)});
  };
  std::string index_shape =
      c.emit1("Concat", {ones(head), minus_one, ones(tail)}, {Attr::i("axis", 0)});
  std::string index =
      c.emit1("Expand", {c.emit1("Reshape", {indices, index_shape}), c.emit1("Shape", {dy_3})});
  c.set_input_grad(0, c.emit1("ScatterElements", {zeros_like(c, x), index, dy_3},
                              {Attr::i("axis", axis), Attr::s("reduction", "add")}));
}

void gather_elements_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty() || !c.needs_input_grad(0)) return;
  require_scatter_add(c);
  c.set_input_grad(0,
                   c.emit1("ScatterElements", {zeros_like(c, c.input(0)), c.input(1), dy},
                           {Attr::i("axis", c.attr_int("axis", 0)), Attr::s("reduction", "add")}));
}

// ScatterND has no batch_dims: the batch axes are flattened into one and its coordinate is
// prepended to every index tuple.
void gather_nd_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty() || !c.needs_input_grad(0)) return;
  require_scatter_add(c);
  const std::string &x = c.input(0), &indices = c.input(1);
  const std::vector<Attr> add = {Attr::s("reduction", "add")};
  const int64_t b = c.attr_int("batch_dims", 0);
  if (b == 0) {
    c.set_input_grad(0, c.emit1("ScatterND", {zeros_like(c, x), indices, dy}, add));
    return;
  }
  std::string zeros = flatten_leading(c, zeros_like(c, x), b);
  std::string index = flatten_leading(c, indices, b);
  std::string dy_flat = flatten_leading(c, dy, b);
  // The batch coordinate of every tuple: an exclusive running count of ones along axis 0.
  std::string tuple_shape = c.emit1(
      "Concat",
      {c.emit1("Slice", {c.emit1("Shape", {index}), c.ints_constant({0}), c.ints_constant({-1})}),
       c.ints_constant({1})},
      {Attr::i("axis", 0)});
  std::string ones = c.emit1("ConstantOfShape", {tuple_shape},
                             {Attr::scalar_tensor("value", onnx::TensorProto::INT64, 1)});
  std::string batch_index = c.emit1("CumSum", {ones, int_scalar(c, 0)}, {Attr::i("exclusive", 1)});
  std::string full = c.emit1("Concat", {batch_index, index}, {Attr::i("axis", -1)});
  std::string dx = c.emit1("ScatterND", {zeros, full, dy_flat}, add);
  c.set_input_grad(0, c.emit1("Reshape", {dx, shape_of(c, x)}));
}

// ScatterElements / ScatterND: the overwritten positions of data get no gradient (reduction
// "none") or all of it ("add"); updates get dy gathered at the indices.
void scatter_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const bool elements = c.node().op_type == "ScatterElements";
  const std::string reduction = c.attr_string("reduction", "none");
  if (reduction != "none" && reduction != "add")
    c.fail("reduction '" + reduction + "' is not supported");
  std::vector<Attr> axis;
  if (elements) axis.push_back(Attr::i("axis", c.attr_int("axis", 0)));
  const std::string &indices = c.input(1), &updates = c.input(2);
  if (c.needs_input_grad(0)) {
    c.set_input_grad(0, reduction == "add" ? dy
                                           : c.emit1(c.node().op_type,
                                                     {dy, indices, zeros_like(c, updates)}, axis));
  }
  if (c.needs_input_grad(2)) {
    c.set_input_grad(2, c.emit1(elements ? "GatherElements" : "GatherND", {dy, indices}, axis));
  }
}

void expand_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (!dy.empty()) c.set_input_grad(0, c.unbroadcast(dy, c.input(0)));
}

// y = tile(x, r): dy viewed as [r0, d0, r1, d1, ...] and summed over the repeat axes.
void tile_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty() || !c.needs_input_grad(0)) return;
  if (c.static_rank(c.input(0)) == 0) {  // tiling a scalar copies it
    c.set_input_grad(0, dy);
    return;
  }
  std::string one = c.ints_constant({1});
  std::string pairs = c.emit1("Concat",
                              {c.emit1("Unsqueeze", {c.input(1), one}),
                               c.emit1("Unsqueeze", {c.emit1("Shape", {c.input(0)}), one})},
                              {Attr::i("axis", 1)});
  std::string grid = c.emit1("Reshape", {dy, c.emit1("Reshape", {pairs, c.ints_constant({-1})})});
  std::string two = int_scalar(c, 2);
  std::string repeat_axes = c.emit1(
      "Range", {int_scalar(c, 0), c.emit1("Mul", {c.emit1("Size", {c.input(1)}), two}), two});
  c.set_input_grad(0, c.emit1("ReduceSum", {grid, repeat_axes}, {Attr::i("keepdims", 0)}));
}

// Reflect, edge and wrap padding copy input elements: pad a tensor of the input's flat positions
// the same way to learn where each output element came from, then scatter-add dy there.
std::string copied_pad_grad(RuleContext& c, const std::string& dy) {
  const std::string& x = c.input(0);
  std::string shape = c.emit1("Shape", {x});
  std::string count = c.emit1("ReduceProd", {shape}, {Attr::i("keepdims", 0)});
  std::string positions =
      c.emit1("Reshape", {c.emit1("Range", {int_scalar(c, 0), count, int_scalar(c, 1)}), shape});
  std::vector<std::string> inputs = {positions, c.input(1)};
  if (c.num_inputs() > 3 && !c.input(3).empty()) inputs.insert(inputs.end(), {"", c.input(3)});
  std::string source = c.emit1("Pad", inputs, Attr::copy(c.node(), {"mode"}));
  std::string flat = c.ints_constant({-1});
  std::string zeros = c.emit1("Reshape", {zeros_like(c, x), flat});
  std::string summed =
      c.emit1("ScatterElements",
              {zeros, c.emit1("Reshape", {source, flat}), c.emit1("Reshape", {dy, flat})},
              {Attr::i("axis", 0), Attr::s("reduction", "add")});
  return c.emit1("Reshape", {summed, shape});
}

// Constant padding: dx = pad(dy, -pads) (crops what was added, zero-fills what was cropped);
// d constant_value = sum of dy over the added positions = sum(dy) - sum(dx).
void pad_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const std::string mode = c.attr_string("mode", "constant");
  if (mode != "constant") {
    if (c.needs_input_grad(0)) c.set_input_grad(0, copied_pad_grad(c, dy));
    return;
  }
  std::vector<std::string> inputs = {dy, c.emit1("Neg", {c.input(1)})};
  if (c.num_inputs() > 3 && !c.input(3).empty()) inputs.insert(inputs.end(), {"", c.input(3)});
  std::string dx = c.emit1("Pad", inputs);
  c.set_input_grad(0, dx);
  if (c.needs_input_grad(2)) {
    const std::vector<Attr> all = {Attr::i("keepdims", 0)};
    std::string added =
        c.emit1("Sub", {c.emit1("ReduceSum", {dy}, all), c.emit1("ReduceSum", {dx}, all)});
    c.set_input_grad(2, c.emit1("Reshape", {added, shape_of(c, c.input(2))}));
  }
}

// Einsum is linear in each operand: d operand k = einsum(dy, other operands -> its indices).
// Indices of operand k summed away by the forward op (in no other term) are broadcast back.
// Rewrites "..." in an Einsum equation as explicit letters (unused capitals), from the operands'
// static ranks, right-aligned across operands as NumPy broadcasts them. Broadcasting inside the
// ellipsis (a size-1 axis meeting a longer one) is refused: the gradient would need a reduction.
std::string spell_out_ellipsis(RuleContext& c, const std::string& eq) {
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t start = 0;;) {
    const size_t comma = lhs.find(',', start);
    terms.push_back(
        lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (int(terms.size()) != c.num_inputs())
    c.fail("equation '" + eq + "' does not match the inputs");
  std::string spare;
  for (char ch = 'A'; ch <= 'Z'; ++ch) {
    if (eq.find(ch) == std::string::npos) spare += ch;
  }
  std::vector<int64_t> widths;
  int64_t width = 0;
  for (int k = 0; k < c.num_inputs(); ++k) {
    const std::string& t = terms[size_t(k)];
    int64_t w = 0;
    if (t.find("...") != std::string::npos) {
      const int64_t r = c.static_rank(c.input(k));
      if (r < 0) c.fail("'...' needs the rank of input " + std::to_string(k));
      w = r - int64_t(t.size() - 3);
      if (w < 0)
        c.fail("equation '" + eq + "' has more indices than input " + std::to_string(k) +
               " has axes");
    }
    widths.push_back(w);
    width = std::max(width, w);
  }
  if (width > int64_t(spare.size()))
    c.fail("'...' spans more axes than there are spare index letters");
  const std::string letters = spare.substr(0, size_t(width));
  std::vector<std::vector<int64_t>> dims(letters.size());
  std::string rewritten;
  for (int k = 0; k < c.num_inputs(); ++k) {
    std::string t = terms[size_t(k)];
    const size_t at = t.find("...");
    if (at != std::string::npos) {
      const std::string mine = letters.substr(size_t(width - widths[size_t(k)]));
      if (auto shape = c.static_shape(c.input(k))) {
        for (size_t j = 0; j < mine.size(); ++j)
          dims[size_t(width - widths[size_t(k)]) + j].push_back((*shape)[at + j]);
      }
      t.replace(at, 3, mine);
    }
    rewritten += (k ? "," : "") + t;
  }
  for (const auto& d : dims) {
    for (int64_t v : d) {
      if (v != d[0]) c.fail("broadcasting inside '...' is not supported by the Einsum gradient");
    }
  }
  if (arrow == std::string::npos) {
    // Implicit output: the ellipsis axes first, then the letters used once, alphabetically.
    std::string all;
    for (const auto& t : terms) all += t;
    std::string out = letters;
    for (char ch : std::set<char>(all.begin(), all.end())) {
      if (ch != '.' && std::count(all.begin(), all.end(), ch) == 1) out += ch;
    }
    return rewritten + "->" + out;
  }
  std::string out = eq.substr(arrow + 2);
  if (const size_t at = out.find("..."); at != std::string::npos) out.replace(at, 3, letters);
  return rewritten + "->" + out;
}

void einsum_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  std::string eq = c.attr_string("equation", "");
  eq.erase(std::remove(eq.begin(), eq.end(), ' '), eq.end());
  if (eq.find("...") != std::string::npos) eq = spell_out_ellipsis(c, eq);
  const size_t arrow = eq.find("->");
  std::vector<std::string> terms;
  for (size_t start = 0;;) {
    const size_t comma = eq.find(',', start);
    const size_t stop = std::min(comma, arrow);
    terms.push_back(eq.substr(start, stop - start));
    if (comma == std::string::npos || comma > arrow) break;
    start = comma + 1;
  }
  std::string out;
  if (arrow != std::string::npos) {
    out = eq.substr(arrow + 2);
  } else {  // implicit output: letters used once, in alphabetical order
    std::string all;
    for (const auto& t : terms) all += t;
    for (char ch : std::set<char>(all.begin(), all.end())) {
      if (std::count(all.begin(), all.end(), ch) == 1) out += ch;
    }
  }
  if (int(terms.size()) != c.num_inputs())
    c.fail("equation '" + eq + "' does not match the inputs");
  for (const auto& t : terms) {
    if (std::set<char>(t.begin(), t.end()).size() != t.size())
      c.fail("equation '" + eq + "' repeats an index within one operand");
  }
  for (int k = 0; k < c.num_inputs(); ++k) {
    if (!c.needs_input_grad(k)) continue;
    std::string known = out, lhs = out;
    std::vector<std::string> operands = {dy};
    for (int j = 0; j < c.num_inputs(); ++j) {
      if (j == k) continue;
      known += terms[size_t(j)];
      lhs += "," + terms[size_t(j)];
      operands.push_back(c.input(j));
    }
    std::string kept;
    std::vector<int64_t> summed;
    const std::string& term = terms[size_t(k)];
    for (size_t p = 0; p < term.size(); ++p) {
      if (known.find(term[p]) != std::string::npos) {
        kept += term[p];
      } else {
        summed.push_back(int64_t(p));
      }
    }
    std::string g = c.emit1("Einsum", operands, {Attr::s("equation", lhs + "->" + kept)});
    if (!summed.empty()) {
      g = c.emit1("Expand",
                  {c.emit1("Unsqueeze", {g, c.ints_constant(summed)}), shape_of(c, c.input(k))});
    }
    c.set_input_grad(k, g);
  }
}

// The adjoint of a running sum runs the other way: dx = cumsum(dy, reverse = !reverse).
void cumsum_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  c.set_input_grad(0, c.emit1("CumSum", {dy, c.input(1)},
                              {Attr::i("exclusive", c.attr_int("exclusive", 0)),
                               Attr::i("reverse", 1 - c.attr_int("reverse", 0))}));
}

// Training mode: dx = dy * mask / (1 - ratio); inference mode (the default): dx = dy.
void dropout_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const std::string& training = c.input(2);
  if (training.empty()) {
    c.set_input_grad(0, dy);
    return;
  }
  if (c.output(1).empty())
    c.fail("with a training_mode input the gradient needs the mask output (output 1)");
  // Before CastLike (opset 15) ratio is taken to have the data's type.
  std::string ratio = c.input(1).empty() ? c.scalar_like(0.5, c.input(0))
                      : c.opset() >= 15  ? c.emit1("CastLike", {c.input(1), c.input(0)})
                                         : c.input(1);
  std::string one = c.scalar_like(1.0, c.input(0)), zero = c.scalar_like(0.0, c.input(0));
  std::string scale = c.emit1("Div", {one, c.emit1("Sub", {one, ratio})});
  std::string kept = c.emit1("Mul", {dy, c.emit1("Where", {c.output(1), scale, zero})});
  c.set_input_grad(0, c.emit1("Where", {training, kept, dy}));
}

}  // namespace

GRAFT_GRADIENT_RULES(tensor) {
  for (const char* op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze"})
    reg.add({"", op, 13, 1 << 30, &reshape_grad});
  reg.add({"", "Transpose", 13, 1 << 30, &transpose_grad});
  reg.add({"", "Concat", 13, 1 << 30, &concat_grad});
  reg.add({"", "Split", 13, 1 << 30, &split_grad});
  reg.add({"", "Slice", 13, 1 << 30, &slice_grad});
  reg.add({"", "Gather", 13, 1 << 30, &gather_grad});
  reg.add({"", "GatherElements", 13, 1 << 30, &gather_elements_grad});
  reg.add({"", "GatherND", 13, 1 << 30, &gather_nd_grad});
  reg.add({"", "ScatterElements", 13, 1 << 30, &scatter_grad});
  reg.add({"", "ScatterND", 13, 1 << 30, &scatter_grad});
  reg.add({"", "Expand", 13, 1 << 30, &expand_grad});
  reg.add({"", "Tile", 13, 1 << 30, &tile_grad});
  reg.add({"", "Pad", 13, 1 << 30, &pad_grad});
  reg.add({"", "Einsum", 12, 1 << 30, &einsum_grad});
  reg.add({"", "CumSum", 11, 1 << 30, &cumsum_grad});
  reg.add({"", "Dropout", 13, 1 << 30, &dropout_grad});
}

}  // namespace graft::autodiff
