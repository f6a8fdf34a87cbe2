// Multi-head attention as PyTorch exports it becomes com.graft.Attention. The pattern, from the
// projections q, k, v reshaped to [batch, sequence, heads, head size]:
//   Q = Transpose(q, [0,2,1,3]) (* a scalar)
//   K = Transpose(k, [0,2,3,1]), or Transpose(Transpose(k, [0,2,1,3]), [0,1,3,2]), or the
//       dynamo exporter's Reshape to [B*H, S, D] -> Transpose [0,2,1] -> Reshape to [B, H, D, S]
//       (* a scalar)
//   P = Softmax(MatMul(Q, K) (/ or * a scalar) (+ mask), axis -1), optionally NaN-guarded by
//       Where(IsNaN(P), 0, P)
//   out = Transpose(MatMul(P, Transpose(v, [0,2,1,3])), [0,2,1,3]), the legacy exporter's
//       Reshape of the context to the [B, H, S, D] it has between the two
// The Reshapes' targets are read as the shape arithmetic computes them (fusion_match's
// shape_dims), so a dynamic batch still shows which axes they move.
// Attention(q, k, v, mask) computes `out` directly with the product of the scalars as `scale`.
// The Reshapes stay (they are views). Shape nodes reading a removed Transpose read its input
// through a Gather of the permuted dims instead.
#include <algorithm>

#include "ir/names.h"
#include "ir/transforms/fusion_match.h"
#include "ir/transforms/optimize.h"
#include "ir/transforms/transformer_fusions.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {
namespace {

const std::vector<int64_t> kSplitHeads = {0, 2, 1, 3};

bool has_perm(const Node* n, const std::vector<int64_t>& perm) {
  if (!is_op(n, "Transpose") || n->inputs.size() != 1) return false;
  const Attribute* p = n->find_attr("perm");
  return p && std::vector<int64_t>(p->proto->ints().begin(), p->proto->ints().end()) == perm;
}

// A value the fusion removes whose Shape readers must read `source` permuted by `perm`.
struct Redirect {
  std::string value, source;
  std::vector<int64_t> perm;
};

struct Match {
  std::vector<const Node*> nodes;
  std::vector<Redirect> redirects;
  double scale = 1;
  bool typed = false;  // a float scalar in the pattern fixes the element type
};

// Whether every reader of `value` is `reader` (once) or a Shape node, and it is no graph output.
bool read_by(const Graph& g, const std::string& value, const Node* reader) {
  if (g.is_graph_output(value)) return false;
  int uses = 0;
  for (const Node* r : g.consumers(value)) {
    if (r == reader) {
      uses += static_cast<int>(std::count(r->inputs.begin(), r->inputs.end(), value));
    } else if (!is_op(r, "Shape")) {
      return false;
    }
  }
  return uses == 1;
}

// `value` read by `reader`, or its operand when it is a Mul / Div by a float scalar read only by
// `reader` (the scalar joins the match's scale). `*peeled` is that Mul / Div, else `reader`.
std::string unscaled(const Graph& g, const std::string& value, const Node* reader, Match& m,
                     const Node** peeled) {
  *peeled = reader;
  const Node* p = g.producer(value);
  if (!p || p->inputs.size() != 2 || sole_reader(g, value) != reader) return value;
  std::string operand;
  if (is_op(p, "Div")) {
    const std::optional<float> c = scalar_float(g, p->inputs[1]);
    if (!c || *c == 0.0f) return value;
    m.scale /= *c;
    operand = p->inputs[0];
  } else if (is_op(p, "Mul")) {
    for (int side = 0; side < 2 && operand.empty(); ++side) {
      if (const std::optional<float> c = scalar_float(g, p->inputs[side])) {
        m.scale *= *c;
        operand = p->inputs[1 - side];
      }
    }
    if (operand.empty()) return value;
  } else {
    return value;
  }
  m.nodes.push_back(p);
  m.typed = true;
  *peeled = p;
  return operand;
}

// The [B, S, H, D] value that `value` = Transpose(it, perm) reads, when `reader` is its only
// reader besides Shape nodes; nullptr otherwise.
const std::string* through_transpose(const Graph& g, const std::string& value, const Node* reader,
                                     const std::vector<int64_t>& perm, Match& m) {
  const Node* t = g.producer(value);
  if (!has_perm(t, perm) || !read_by(g, value, reader)) return nullptr;
  m.nodes.push_back(t);
  m.redirects.push_back({value, t->inputs[0], perm});
  return &t->inputs[0];
}

// The [B, S, H, D] keys that `value` = K^T ([B, H, D, S]) is computed from, or nullptr.
const std::string* keys_of(const Graph& g, const std::string& value, const Node* reader, Match& m) {
  if (const std::string* k = through_transpose(g, value, reader, {0, 2, 3, 1}, m)) return k;
  const Node* t = g.producer(value);
  Match trial = m;
  if (has_perm(t, {0, 1, 3, 2}) && read_by(g, value, reader)) {
    trial.nodes.push_back(t);
    const std::string* k = through_transpose(g, t->inputs[0], t, kSplitHeads, trial);
    if (!k) return nullptr;
    trial.redirects.push_back({value, *k, {0, 2, 3, 1}});
    m = trial;
    return k;
  }
  // Reshape([B, H, S, D] -> [B*H, S, D]) -> Transpose [0,2,1] -> Reshape([B*H, D, S] ->
  // [B, H, D, S]): the targets keep S and D and split the merged axis back into B, H.
  const Node* r4 = g.producer(value);
  if (!is_op(r4, "Reshape") || sole_reader(g, value) != reader) return nullptr;
  const Node* t3 = g.producer(r4->inputs[0]);
  if (!has_perm(t3, {0, 2, 1}) || sole_reader(g, t3->outputs[0]) != r4) return nullptr;
  const Node* r3 = g.producer(t3->inputs[0]);
  if (!is_op(r3, "Reshape") || sole_reader(g, r3->outputs[0]) != t3) return nullptr;
  const auto merged = reshape_dims(g, *r3);
  const auto split = reshape_dims(g, *r4);
  if (!merged || !split || merged->size() != 3 || split->size() != 4) return nullptr;
  const auto heads = [&](int64_t axis) { return ShapeDim{-1, r3->inputs[0], axis}; };
  const ShapeDim& s = (*merged)[1];
  const ShapeDim& d = (*merged)[2];
  if (!same_dim(g, s, heads(2)) || !same_dim(g, d, heads(3)) ||
      !same_dim(g, (*split)[0], heads(0)) || !same_dim(g, (*split)[1], heads(1)) ||
      !same_dim(g, (*split)[2], heads(3)) || !same_dim(g, (*split)[3], heads(2)))
    return nullptr;
  trial.nodes.insert(trial.nodes.end(), {r4, t3, r3});
  const std::string* k = through_transpose(g, r3->inputs[0], r3, kSplitHeads, trial);
  if (k) m = trial;
  return k;
}

std::string fresh_name(const Graph& g, const std::string& base) {
  std::string name = base;
  for (int k = 1; g.find_initializer(name) || g.producer(name) || g.is_graph_input(name) ||
                  g.value_info.count(name);
       ++k)
    name = base + "_" + std::to_string(k);
  return name;
}

// Shape(value)[start:end] = Gather(Shape(source), perm[start:end]).
void redirect_shapes(Graph& g, const Redirect& r) {
  for (Node* s : g.consumers(r.value)) {
    if (!is_op(s, "Shape")) continue;
    const auto rank = static_cast<int64_t>(r.perm.size());
    int64_t start = 0, end = rank;
    if (const Attribute* a = s->find_attr("start")) start = a->proto->i();
    if (const Attribute* a = s->find_attr("end")) end = a->proto->i();
    start = std::clamp(start < 0 ? start + rank : start, int64_t{0}, rank);
    end = std::clamp(end < 0 ? end + rank : end, int64_t{0}, rank);
    auto indices = std::make_shared<onnx::TensorProto>();
    indices->set_name(fresh_name(g, s->outputs[0] + "_perm"));
    indices->set_data_type(onnx::TensorProto::INT64);
    indices->add_dims(std::max<int64_t>(end - start, 0));
    for (int64_t i = start; i < end; ++i) indices->add_int64_data(r.perm[static_cast<size_t>(i)]);
    g.initializers.push_back(indices);
    Node gather;
    gather.name = s->name + "_permuted";
    gather.op_type = "Gather";
    gather.inputs = {fresh_name(g, s->outputs[0] + "_unpermuted"), indices->name()};
    gather.outputs = {s->outputs[0]};
    gather.attributes = {int_attribute("axis", 0)};
    s->inputs = {r.source};
    s->outputs = {gather.inputs[0]};
    s->attributes.clear();
    size_t pos = 0;
    while (g.nodes[pos].get() != s) ++pos;
    g.insert_node(pos + 1, std::move(gather));
  }
}

// The one reader of `value` that is not a Shape node (the last one when there are several).
Node* reader_besides_shapes(const Graph& g, const std::string& value) {
  Node* reader = nullptr;
  for (Node* r : g.consumers(value)) {
    if (!is_op(r, "Shape")) reader = r;
  }
  return reader;
}

// Whether `view` reshapes the context [B, H, S, Dv] to itself: each target dim is the context's
// own or the one q [B, S, H, D] and v [B, T, H, Dv] give it (the kernel requires them to agree),
// but for at most one -1, which the element count then makes the context's too.
bool keeps_context_shape(const Graph& g, const Node& view, const std::string& q,
                         const std::string& v) {
  const auto dims = reshape_dims(g, view);
  if (!dims || dims->size() != 4) return false;
  const std::string& context = view.inputs[0];
  const ShapeDim from_inputs[4] = {{-1, q, 0}, {-1, q, 2}, {-1, q, 1}, {-1, v, 3}};
  int inferred = 0;
  for (int64_t axis = 0; axis < 4; ++axis) {
    const ShapeDim& d = (*dims)[static_cast<size_t>(axis)];
    if (d.value == view.outputs[0]) {
      ++inferred;
    } else if (!same_dim(g, d, ShapeDim{-1, context, axis}) && !same_dim(g, d, from_inputs[axis])) {
      return false;
    }
  }
  return inferred <= 1;
}

bool try_fuse(Graph& g, const Node& softmax) {
  if (!is_op(&softmax, "Softmax") || softmax.inputs.size() != 1) return false;
  const Attribute* axis = softmax.find_attr("axis");
  if (!axis || axis->proto->i() != -1) return false;
  Match m;
  m.nodes.push_back(&softmax);
  std::string probs = softmax.outputs[0];
  const std::vector<Node*> readers = g.consumers(probs);
  if (readers.size() == 2 && !g.is_graph_output(probs)) {
    // Where(IsNaN(P), 0, P): rows the mask removes entirely give zeros, as the kernel's do.
    const Node* isnan = is_op(readers[0], "IsNaN") ? readers[0] : readers[1];
    const Node* where = isnan == readers[0] ? readers[1] : readers[0];
    if (!is_op(isnan, "IsNaN") || !is_op(where, "Where") || where->inputs.size() != 3 ||
        where->inputs[0] != isnan->outputs[0] || where->inputs[2] != probs ||
        !is_scalar(g, where->inputs[1], 0.0) || sole_reader(g, isnan->outputs[0]) != where)
      return false;
    m.nodes.insert(m.nodes.end(), {isnan, where});
    probs = where->outputs[0];
  }
  const Node* context = sole_reader(g, probs);
  if (!is_op(context, "MatMul") || context->inputs.size() != 2 || context->inputs[0] != probs)
    return false;
  m.nodes.push_back(context);
  const std::string* v = through_transpose(g, context->inputs[1], context, kSplitHeads, m);
  if (!v) return false;
  Node* merge = reader_besides_shapes(g, context->outputs[0]);
  const Node* view = nullptr;  // the legacy exporter's Reshape to the same [B, H, S, D]
  if (is_op(merge, "Reshape") && read_by(g, context->outputs[0], merge)) {
    view = merge;
    m.nodes.push_back(view);
    merge = reader_besides_shapes(g, view->outputs[0]);
  }
  const std::string& merged = view ? view->outputs[0] : context->outputs[0];
  if (!has_perm(merge, kSplitHeads) || !read_by(g, merged, merge)) return false;
  // Scores: MatMul(Q, K) (scaled) (+ mask).
  std::string scores = softmax.inputs[0], mask;
  const Node* reader = &softmax;
  const Node* add = g.producer(scores);
  if (is_op(add, "Add") && add->inputs.size() == 2 && sole_reader(g, scores) == &softmax) {
    for (int side = 0; side < 2 && mask.empty(); ++side) {
      Match trial = m;
      const Node* peeled = nullptr;
      if (is_op(g.producer(unscaled(g, add->inputs[side], add, trial, &peeled)), "MatMul")) {
        mask = add->inputs[1 - side];
        scores = add->inputs[side];
      }
    }
    if (mask.empty()) return false;
    m.nodes.push_back(add);
    reader = add;
  }
  const Node* peeled = nullptr;
  scores = unscaled(g, scores, reader, m, &peeled);
  const Node* product = g.producer(scores);
  if (!is_op(product, "MatMul") || product->inputs.size() != 2 || sole_reader(g, scores) != peeled)
    return false;
  m.nodes.push_back(product);
  const Node* q_reader = nullptr;
  const Node* k_reader = nullptr;
  const std::string q_scaled = unscaled(g, product->inputs[0], product, m, &q_reader);
  const std::string k_scaled = unscaled(g, product->inputs[1], product, m, &k_reader);
  const std::string* q = through_transpose(g, q_scaled, q_reader, kSplitHeads, m);
  const std::string* k = q ? keys_of(g, k_scaled, k_reader, m) : nullptr;
  if (!q || !k || !m.typed || (view && !keeps_context_shape(g, *view, *q, *v))) return false;
  // `merge` becomes the fused node: it comes after every input.
  std::vector<std::string> inputs = {*q, *k, *v};
  if (!mask.empty()) inputs.push_back(mask);
  std::vector<Redirect> redirects = m.redirects;
  redirects.push_back({context->outputs[0], merge->outputs[0], kSplitHeads});
  if (view) redirects.push_back({view->outputs[0], merge->outputs[0], kSplitHeads});
  merge->op_type = "Attention";
  merge->domain = names::kDomain;
  merge->inputs = inputs;
  merge->attributes = {float_attribute("scale", static_cast<float>(m.scale))};
  for (const Redirect& r : redirects) redirect_shapes(g, r);
  remove_matched(g, m.nodes);
  g.topological_sort();
  return true;
}

}  // namespace

int fuse_attention(Graph& graph) {
  int fused = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (try_fuse(graph, *graph.nodes[i])) {
      ++fused;
      i = 0;
    }
  }
  // What computed the removed Reshapes' targets.
  if (fused > 0) eliminate_dead_nodes(graph);
  return fused;
}

}  // namespace graft::ir
