// Gradient rules for Loop and Scan: backpropagation through the iterations. The forward loop is
// run again with each iteration's carried values recorded as extra scan outputs; then a Loop
// runs the iterations in reverse, each recomputing its body from the recorded values and
// differentiating it (as If differentiates its branches), carrying the gradients of the carried
// values and summing those of the outer values the body reads. The trip count need not be
// static: it is read from the recording.
#include <cstdint>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "autodiff/gradient_graph.h"
#include "autodiff/rule.h"
#include "onnx/onnx_pb.h"

namespace graft::autodiff {
namespace {

using Ints = std::vector<int64_t>;
using Names = std::vector<std::string>;

bool is_float(int32_t t) {
  return t == onnx::TensorProto::FLOAT || t == onnx::TensorProto::DOUBLE ||
         t == onnx::TensorProto::FLOAT16 || t == onnx::TensorProto::BFLOAT16;
}

ir::Node make_node(const std::string& op, Names in, Names out,
                   const std::vector<Attr>& attrs = {}) {
  ir::Node n;
  n.op_type = op;
  n.name = out[0] + "/" + op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  for (const auto& a : attrs) n.attributes.push_back({a.proto->name(), a.proto, {}});
  return n;
}

ir::Attribute graph_attr(const std::string& name, std::shared_ptr<ir::Graph> g) {
  ir::Attribute a;
  a.name = name;
  a.proto = std::make_shared<onnx::AttributeProto>();
  a.proto->set_name(name);
  a.proto->set_type(onnx::AttributeProto::GRAPH);
  a.graphs.push_back(std::move(g));
  return a;
}

// A value info of element type `dtype` (no type when 0), rank 0 when `scalar`.
ir::ValueInfo typed(const std::string& name, int32_t dtype, bool scalar = false) {
  ir::ValueInfo v{name, nullptr, ""};
  if (dtype == 0) return v;
  v.type = std::make_shared<onnx::TypeProto>();
  v.type->mutable_tensor_type()->set_elem_type(dtype);
  if (scalar) v.type->mutable_tensor_type()->mutable_shape();
  return v;
}

std::string emit1(GradientGraph& g, const std::string& base, const std::string& op, const Names& in,
                  const std::vector<Attr>& attrs = {}) {
  return g.emit(base, op, in, 1, attrs, "")[0];
}

// An int64 constant: a scalar, or 1-D when `values` has other than one element.
std::string int_constant(GradientGraph& g, const std::string& base, const Ints& values) {
  Attr a{std::make_shared<onnx::AttributeProto>()};
  a.proto->set_name("value");
  a.proto->set_type(onnx::AttributeProto::TENSOR);
  onnx::TensorProto* t = a.proto->mutable_t();
  t->set_data_type(onnx::TensorProto::INT64);
  if (values.size() != 1) t->add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) t->add_int64_data(v);
  return emit1(g, base, "Constant", {}, {a});
}

std::string zeros_like(GradientGraph& g, const std::string& v, int32_t dtype) {
  std::string shape = emit1(g, v, "Shape", {v});
  std::string z =
      emit1(g, v, "ConstantOfShape", {shape},
            {Attr::scalar_tensor("value", dtype ? dtype : onnx::TensorProto::DOUBLE, 0)});
  return dtype ? z : emit1(g, v, "CastLike", {z, v});
}

// Loop: inputs (M, cond, carried...), body (iteration, cond, carried...) -> (cond, carried...,
// scan...). Scan: inputs (carried..., scan...), body (carried..., slices...) -> (carried...,
// scan...). Both produce (carried..., scan...).
void iterate_grad(RuleContext& c, bool loop) {
  GradientGraph& outer = c.graph();
  const ir::Node& n = c.node();
  const ir::Attribute* body_attr = n.find_attr("body");
  if (!body_attr || body_attr->graphs.empty()) c.fail("has no body");
  const ir::Graph& body = *body_attr->graphs[0];
  const int in_off = loop ? 2 : 0, out_off = loop ? 1 : 0;
  const int scan_in = loop ? 0 : static_cast<int>(c.attr_int("num_scan_inputs", 0));
  const int states = c.num_inputs() - in_off - scan_in;
  const int scan_out = static_cast<int>(body.outputs.size()) - out_off - states;
  if (states < 0 || scan_out < 0 ||
      static_cast<int>(body.inputs.size()) != in_off + states + scan_in)
    c.fail("the body's inputs and outputs do not match the node's");
  auto padded = [&](const char* name, int count) {
    Ints v = c.attr_ints(name);
    v.resize(static_cast<size_t>(count), 0);
    return v;
  };
  const Ints in_axes = padded("scan_input_axes", scan_in);
  const Ints in_dirs = padded("scan_input_directions", scan_in);
  const Ints out_axes = padded("scan_output_axes", scan_out);
  const Ints out_dirs = padded("scan_output_directions", scan_out);
  auto body_in = [&](int i) { return body.inputs[static_cast<size_t>(i)].name; };
  auto body_out = [&](int i) { return body.outputs[static_cast<size_t>(i)].name; };

  std::vector<int32_t> dtype(static_cast<size_t>(states));
  bool wanted = false;
  for (int j = 0; j < states; ++j) {
    int32_t t = outer.elem_type(c.input(in_off + j));
    if (t == 0) {
      const onnx::TypeProto* bt = body.type_of(body_in(in_off + j));
      t = bt && bt->has_tensor_type() ? bt->tensor_type().elem_type() : 0;
    }
    dtype[static_cast<size_t>(j)] = is_float(t) ? t : 0;
    wanted = wanted || c.needs_input_grad(in_off + j);
  }
  for (int j = 0; j < scan_in; ++j) wanted = wanted || c.needs_input_grad(states + j);
  Names free;
  for (const auto& v : body.free_variables()) {
    if (outer.needs_grad(v) && is_float(outer.elem_type(v))) free.push_back(v);
  }
  if (!wanted && free.empty()) return;

  // The forward loop again, stacking the iteration number (Loop) and the carried values.
  ir::Node rec = n;
  auto rec_body = std::make_shared<ir::Graph>(body.clone());
  Names recorded;
  if (loop) recorded.push_back(body_in(0));
  for (int j = 0; j < states; ++j) recorded.push_back(body_in(in_off + j));
  for (const auto& v : recorded) {
    std::string o = outer.fresh(v);
    rec_body->add_node(make_node("Identity", {v}, {o}));
    rec_body->outputs.push_back({o, nullptr, ""});
  }
  for (auto& a : rec.attributes) {
    if (a.name == "body") a.graphs = {rec_body};
    if (a.name == "scan_output_axes" || a.name == "scan_output_directions") {
      a.proto = std::make_shared<onnx::AttributeProto>(*a.proto);
      for (size_t r = 0; r < recorded.size(); ++r) a.proto->add_ints(0);
    }
  }
  rec.outputs.clear();
  for (int k = 0; k < states + scan_out; ++k) rec.outputs.push_back(outer.fresh(c.output(k)));
  for (const auto& v : recorded) rec.outputs.push_back(outer.fresh(v));
  rec.name = rec.outputs[0] + "/" + n.op_type;
  const Names stacks(rec.outputs.begin() + states + scan_out, rec.outputs.end());
  outer.emitted().push_back(std::move(rec));

  std::string trips;
  if (loop) {
    trips = c.emit1("Size", {stacks[0]});
  } else {
    if (scan_in == 0) c.fail("has no scan inputs");
    const std::string x0 = c.input(states);
    trips = c.emit1("Gather", {c.emit1("Shape", {x0}), int_constant(outer, x0, {in_axes[0]})});
  }
  const std::string last = c.emit1("Sub", {trips, int_constant(outer, trips, {1})});

  // The backward body: iteration i recomputes forward iteration t = trips - 1 - i.
  auto bg = std::make_shared<ir::Graph>(body.clone());
  bg->name = body.name + "_grad";
  for (const auto* vs : {&bg->inputs, &bg->outputs}) {
    for (const auto& v : *vs) {
      if (v.type) bg->value_info[v.name] = v;
    }
  }
  GradientGraph inner(outer.model(), *bg, &outer);
  const std::string it = outer.fresh("iteration"), cond = outer.fresh("cond");
  const std::string t = outer.fresh("t");
  bg->inputs = {typed(it, onnx::TensorProto::INT64, true),
                typed(cond, onnx::TensorProto::BOOL, true)};
  Names state_grad_in(static_cast<size_t>(states)), acc_in;
  for (int j = 0; j < states; ++j) {
    if (!dtype[static_cast<size_t>(j)]) continue;
    state_grad_in[static_cast<size_t>(j)] = outer.fresh(body_in(in_off + j));
    bg->inputs.push_back(
        typed(state_grad_in[static_cast<size_t>(j)], dtype[static_cast<size_t>(j)]));
  }
  for (const auto& f : free) {
    acc_in.push_back(outer.fresh(f));
    bg->inputs.push_back(typed(acc_in.back(), outer.elem_type(f)));
  }
  std::vector<ir::Node> prefix;
  prefix.push_back(make_node("Sub", {last, it}, {t}));
  if (loop) {
    prefix.push_back(make_node("Identity", {t}, {body_in(0)}));
    prefix.push_back(make_node("Identity", {cond}, {body_in(1)}));
  }
  const size_t stack_off = loop ? 1 : 0;
  for (int j = 0; j < states; ++j) {
    prefix.push_back(make_node("Gather", {stacks[stack_off + static_cast<size_t>(j)], t},
                               {body_in(in_off + j)}, {Attr::i("axis", 0)}));
  }
  for (int j = 0; j < scan_in; ++j) {
    const size_t k = static_cast<size_t>(j);
    prefix.push_back(make_node("Gather", {c.input(states + j), in_dirs[k] ? it : t},
                               {body_in(states + j)}, {Attr::i("axis", in_axes[k])}));
  }
  for (size_t k = 0; k < prefix.size(); ++k) bg->insert_node(k, std::move(prefix[k]));

  std::set<std::string> seeded;
  auto seed = [&](const std::string& v, const std::string& g) {
    inner.add_contribution(v, g);
    seeded.insert(v);
  };
  for (int j = 0; j < states; ++j) {
    if (dtype[static_cast<size_t>(j)])
      seed(body_out(out_off + j), state_grad_in[static_cast<size_t>(j)]);
  }
  for (int k = 0; k < scan_out; ++k) {
    const std::string dy = c.output_grad(states + k);
    if (dy.empty()) continue;
    const size_t s = static_cast<size_t>(k);
    seed(body_out(out_off + states + k),
         emit1(inner, dy, "Gather", {dy, out_dirs[s] ? it : t}, {Attr::i("axis", out_axes[s])}));
  }
  Names sources;
  for (int j = 0; j < states; ++j) {
    if (dtype[static_cast<size_t>(j)]) sources.push_back(body_in(in_off + j));
  }
  for (int j = 0; j < scan_in; ++j) {
    if (c.needs_input_grad(states + j)) sources.push_back(body_in(states + j));
  }
  sources.insert(sources.end(), free.begin(), free.end());
  BackwardPlan plan = plan_backward(*bg, sources, seeded);
  plan.needs.insert(sources.begin(), sources.end());
  inner.set_needs_grad(plan.needs);
  run_rules(inner, plan,
            [&](const ir::Node* m) { return n.describe() + " body " + m->describe(); });

  auto grad_or_zeros = [&](const std::string& v, int32_t type) {
    std::string g = inner.grad_of(v);
    return g.empty() ? zeros_like(inner, v, type) : g;
  };
  Names outs = {emit1(inner, cond, "Identity", {cond})};
  for (int j = 0; j < states; ++j) {
    if (!dtype[static_cast<size_t>(j)]) continue;
    const std::string v = body_in(in_off + j);
    outs.push_back(emit1(inner, v, "Identity", {grad_or_zeros(v, dtype[static_cast<size_t>(j)])}));
  }
  for (size_t f = 0; f < free.size(); ++f) {
    std::string g = inner.grad_of(free[f]);
    outs.push_back(g.empty() ? emit1(inner, free[f], "Identity", {acc_in[f]})
                             : emit1(inner, free[f], "Add", {acc_in[f], g}));
  }
  std::vector<int> scan_grads;
  for (int j = 0; j < scan_in; ++j) {
    if (!c.needs_input_grad(states + j)) continue;
    const std::string v = body_in(states + j);
    outs.push_back(
        emit1(inner, v, "Identity", {grad_or_zeros(v, outer.elem_type(c.input(states + j)))}));
    scan_grads.push_back(j);
  }
  for (auto& e : inner.emitted()) bg->add_node(std::move(e));
  bg->outputs.clear();
  for (const auto& o : outs) bg->outputs.push_back({o, nullptr, ""});
  bg->renumber();

  ir::Node back;
  back.op_type = "Loop";
  back.inputs = {trips, ""};
  for (int j = 0; j < states; ++j) {
    if (!dtype[static_cast<size_t>(j)]) continue;
    std::string dy = c.output_grad(j);
    back.inputs.push_back(dy.empty() ? zeros_like(outer, c.output(j), dtype[static_cast<size_t>(j)])
                                     : dy);
  }
  for (const auto& f : free) back.inputs.push_back(zeros_like(outer, f, outer.elem_type(f)));
  for (size_t k = 1; k < outs.size(); ++k) back.outputs.push_back(outer.fresh(outs[k]));
  back.name = back.outputs[0] + "/Loop";
  back.attributes.push_back(graph_attr("body", bg));
  const Names results = back.outputs;
  outer.emitted().push_back(std::move(back));

  size_t r = 0;
  for (int j = 0; j < states; ++j) {
    if (dtype[static_cast<size_t>(j)]) c.set_input_grad(in_off + j, results[r++]);
  }
  for (const auto& f : free) outer.add_contribution(f, results[r++]);
  for (int j : scan_grads) {
    // Stacked in backward order along axis 0: restore the scan order and axis.
    const size_t k = static_cast<size_t>(j);
    std::string g = results[r++];
    if (!in_dirs[k]) {
      g = c.emit1("Slice",
                  {g, c.ints_constant({-1}), c.ints_constant({std::numeric_limits<int64_t>::min()}),
                   c.ints_constant({0}), c.ints_constant({-1})});
    }
    int64_t axis = in_axes[k];
    if (axis != 0) {
      const int64_t rank = c.static_rank(c.input(states + j));
      if (rank < 0) c.fail("scan_input_axes other than 0 need the scan input's rank");
      if (axis < 0) axis += rank;
      Ints perm;
      for (int64_t d = 0; d < rank; ++d) perm.push_back(d < axis ? d + 1 : d == axis ? 0 : d);
      g = c.emit1("Transpose", {g}, {Attr::ints("perm", perm)});
    }
    c.set_input_grad(states + j, g);
  }
}

void loop_grad(RuleContext& c) { iterate_grad(c, true); }
void scan_grad(RuleContext& c) { iterate_grad(c, false); }

}  // namespace

GRAFT_GRADIENT_RULES(loop) {
  reg.add({"", "Loop", 11, 1 << 30, &loop_grad});
  reg.add({"", "Scan", 9, 1 << 30, &scan_grad});
}

}  // namespace graft::autodiff
