// build_gradient_graph: walks the forward graph backwards from the loss, asking each node's
// gradient rule for the gradients of its inputs.
#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <set>

#include "autodiff/gradient.h"
#include "autodiff/gradient_graph.h"
#include "autodiff/rule.h"
#include "ir/error.h"
#include "ir/names.h"
#include "ir/schema.h"
#include "ir/serialize.h"
#include "ir/transforms/optimize.h"
#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"

namespace graft::autodiff {
namespace {

// Rules emit opset-18 forms (CastLike, axes as inputs, scatter with reduction); older models are
// converted first.
constexpr int64_t kMinOpset = 18;
constexpr int64_t kConvertTo = 18;

bool is_float_type(int32_t t) {
  return t == onnx::TensorProto::FLOAT || t == onnx::TensorProto::DOUBLE ||
         t == onnx::TensorProto::FLOAT16 || t == onnx::TensorProto::BFLOAT16;
}

// Whether gradients can flow through `value`: floating-point, or of a type not known yet.
// Integer and bool values (shapes, indices, masks) carry none.
bool differentiable(const ir::Graph& g, const std::string& value) {
  int32_t t = 0;
  if (const onnx::TensorProto* init = g.find_initializer(value)) {
    t = init->data_type();
  } else if (const onnx::TypeProto* type = g.type_of(value); type && type->has_tensor_type()) {
    t = type->tensor_type().elem_type();
  }
  return t == 0 || is_float_type(t);
}

// What a node reads: its inputs and the outer-scope values its nested graphs read.
std::vector<std::string> reads(const ir::Node& n) {
  std::vector<std::string> r;
  for (const auto& i : n.inputs) {
    if (!i.empty()) r.push_back(i);
  }
  for (const auto& a : n.attributes) {
    for (const auto& sub : a.graphs) {
      for (const auto& v : sub->free_variables()) r.push_back(v);
    }
  }
  return r;
}

// Differentiable values reachable forward from `sources` through node inputs -> outputs.
std::set<std::string> forward_reach(const ir::Graph& g, const std::vector<std::string>& sources) {
  std::set<std::string> reach(sources.begin(), sources.end());
  for (const auto& n : g.nodes) {  // nodes are in topological order
    bool hit = false;
    // CastLike reads only the type of its second input: no gradient flows through it, so a
    // constant cast like a parameter-dependent value stays a constant.
    const bool type_only_second = n->domain.empty() && n->op_type == "CastLike";
    for (const auto& i : reads(*n)) {
      if (type_only_second && n->inputs.size() > 1 && i == n->inputs[1] && i != n->inputs[0])
        continue;
      hit = hit || reach.count(i);
    }
    if (hit) {
      for (const auto& o : n->outputs) {
        if (!o.empty() && differentiable(g, o)) reach.insert(o);
      }
    }
  }
  return reach;
}

// "loss <- node 'b' (Relu) <- node 'a' (Conv)": how the loss reaches `target`.
std::string path_from_loss(const ir::Graph& g, const std::string& loss, const ir::Node* target) {
  std::map<const ir::Node*, const ir::Node*> next_toward_loss;
  std::deque<const ir::Node*> queue;
  if (const ir::Node* p = g.producer(loss)) {
    next_toward_loss[p] = nullptr;
    queue.push_back(p);
  }
  while (!queue.empty()) {
    const ir::Node* n = queue.front();
    queue.pop_front();
    if (n == target) break;
    for (const auto& in : n->inputs) {
      const ir::Node* p = in.empty() ? nullptr : g.producer(in);
      if (p && !next_toward_loss.count(p)) {
        next_toward_loss[p] = n;
        queue.push_back(p);
      }
    }
  }
  std::string path = "loss '" + loss + "'";
  std::vector<const ir::Node*> chain;
  for (const ir::Node* n = target; n; n = next_toward_loss.count(n) ? next_toward_loss[n] : nullptr)
    chain.push_back(n);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) path += " <- " + (*it)->describe();
  return path;
}

}  // namespace

BackwardPlan plan_backward(const ir::Graph& g, const std::vector<std::string>& sources,
                           const std::set<std::string>& targets) {
  BackwardPlan plan;
  std::set<std::string> from_sources = forward_reach(g, sources);
  std::set<std::string> to_targets = targets;
  for (auto it = g.nodes.rbegin(); it != g.nodes.rend(); ++it) {
    const ir::Node& n = **it;
    bool feeds = false;
    for (const auto& o : n.outputs) feeds = feeds || (to_targets.count(o) && from_sources.count(o));
    if (!feeds) continue;
    std::vector<std::string> r = reads(n);
    bool reached = false;
    for (const auto& i : r) reached = reached || from_sources.count(i);
    if (!reached) continue;
    to_targets.insert(r.begin(), r.end());
    plan.order.push_back(&n);
  }
  for (const auto& v : from_sources) {
    if (to_targets.count(v)) plan.needs.insert(v);
  }
  return plan;
}

void run_rules(GradientGraph& grads, const BackwardPlan& plan,
               const std::function<std::string(const ir::Node*)>& path) {
  ir::Model& model = grads.model();
  for (const ir::Node* n : plan.order) {
    int64_t node_opset = model.opset(n->domain);
    const onnx::OpSchema* schema = ir::find_schema(n->domain, n->op_type, node_opset);
    int since = schema ? schema->SinceVersion() : static_cast<int>(node_opset);
    const RuleDef* rule = gradient_rules().find(n->domain, n->op_type, since);
    if (!rule) {
      throw NotImplemented("no gradient rule for op " + n->op_type + " (domain '" +
                           (n->domain.empty() ? std::string("ai.onnx") : n->domain) + "', opset " +
                           std::to_string(node_opset) + "), on the path " + path(n));
    }
    RuleContext ctx(grads, *n, model.opset(""));
    rule->rule(ctx);
  }
}

namespace {

// If: each branch is differentiated on its own, recomputing its forward values inside a new
// branch graph; the new If returns the gradients of the outer values the branches read.
void if_grad(RuleContext& c) {
  GradientGraph& outer = c.graph();
  const ir::Node& n = c.node();
  std::vector<std::string> targets;
  for (const char* attr : {"then_branch", "else_branch"}) {
    const ir::Attribute* a = n.find_attr(attr);
    if (!a || a->graphs.empty()) c.fail(std::string("has no ") + attr);
    for (const auto& v : a->graphs[0]->free_variables()) {
      if (outer.needs_grad(v) && std::find(targets.begin(), targets.end(), v) == targets.end())
        targets.push_back(v);
    }
  }
  if (targets.empty()) return;
  ir::Node grad_if;
  grad_if.op_type = "If";
  grad_if.inputs = {c.input(0)};
  for (const auto& t : targets) grad_if.outputs.push_back(outer.fresh(t));
  grad_if.name = grad_if.outputs[0] + "/If";
  for (const char* attr : {"then_branch", "else_branch"}) {
    const ir::Graph& branch = *n.find_attr(attr)->graphs[0];
    auto bg = std::make_shared<ir::Graph>(branch.clone());
    bg->name = branch.name + "_grad";
    GradientGraph inner(outer.model(), *bg, &outer);
    std::set<std::string> seeded;
    for (int i = 0; i < c.num_outputs() && static_cast<size_t>(i) < bg->outputs.size(); ++i) {
      std::string dy = c.output_grad(i);
      if (dy.empty()) continue;
      inner.add_contribution(bg->outputs[static_cast<size_t>(i)].name, dy);
      seeded.insert(bg->outputs[static_cast<size_t>(i)].name);
    }
    BackwardPlan plan = plan_backward(*bg, targets, seeded);
    plan.needs.insert(targets.begin(), targets.end());
    inner.set_needs_grad(plan.needs);
    run_rules(inner, plan,
              [&](const ir::Node* m) { return n.describe() + " " + attr + " " + m->describe(); });
    std::vector<ir::ValueInfo> outs;
    for (const auto& t : targets) {
      std::string gv = inner.grad_of(t);
      if (gv.empty()) {
        std::string shape = inner.emit(t, "Shape", {t}, 1, {}, "")[0];
        int32_t dtype = inner.elem_type(t);
        gv = inner.emit(t, "ConstantOfShape", {shape}, 1,
                        {Attr::scalar_tensor("value", dtype ? dtype : 1, 0.0)}, "")[0];
      }
      // A branch output must be produced inside the branch.
      std::string out = inner.emit(t, "Identity", {gv}, 1, {}, "")[0];
      outs.push_back({out, nullptr, ""});
    }
    for (auto& e : inner.emitted()) bg->add_node(std::move(e));
    bg->outputs = outs;
    bg->renumber();
    ir::Attribute ga;
    ga.name = attr;
    ga.proto = std::make_shared<onnx::AttributeProto>();
    ga.proto->set_name(attr);
    ga.proto->set_type(onnx::AttributeProto::GRAPH);
    ga.graphs.push_back(bg);
    grad_if.attributes.push_back(std::move(ga));
  }
  for (size_t k = 0; k < targets.size(); ++k)
    outer.add_contribution(targets[k], grad_if.outputs[k]);
  outer.emitted().push_back(std::move(grad_if));
}

}  // namespace

GRAFT_GRADIENT_RULES(control_flow) { reg.add({"", "If", 1, 1 << 30, &if_grad}); }

ir::Model build_gradient_graph(const ir::Model& forward, const std::string& loss,
                               const std::vector<std::string>& wrt_in) {
  ir::Model model =
      forward.opset("") < kMinOpset ? ir::convert_opset(forward, kConvertTo) : forward.clone();
  // Layout chains that copy a tensor only to slice it are simplified first, so that backward,
  // derived from the simpler forward, has no copies to undo either.
  ir::simplify_layout(model.graph);
  ir::infer_shapes(model);
  ir::Graph& g = model.graph;

  bool loss_known = g.producer(loss) != nullptr || g.is_graph_input(loss);
  if (!loss_known) throw InvalidArgument("loss '" + loss + "' is not a value of the graph");
  std::vector<std::string> wrt = wrt_in;
  if (wrt.empty()) {
    for (const auto& t : g.initializers) {
      if (is_float_type(t->data_type())) wrt.push_back(t->name());
    }
  }
  for (const auto& w : wrt) {
    if (!g.find_initializer(w) && !g.is_graph_input(w)) {
      throw InvalidArgument("cannot differentiate with respect to '" + w +
                            "': it is not an initializer or input");
    }
  }

  BackwardPlan plan = plan_backward(g, wrt, {loss});
  GradientGraph grads(model);
  grads.set_needs_grad(plan.needs);
  // Seed: d loss / d loss = 1 for every element of the loss.
  int32_t loss_type = grads.elem_type(loss);
  if (loss_type == 0) loss_type = onnx::TensorProto::FLOAT;
  std::string loss_shape = grads.emit(loss, "Shape", {loss}, 1, {}, "")[0];
  grads.add_contribution(loss, grads.emit(loss, "ConstantOfShape", {loss_shape}, 1,
                                          {Attr::scalar_tensor("value", loss_type, 1.0)}, "")[0]);
  run_rules(grads, plan, [&](const ir::Node* n) { return path_from_loss(g, loss, n); });

  // Outputs: one "<name>_grad" per parameter (zeros when the loss does not depend on it).
  std::vector<ir::Node> emitted = std::move(grads.emitted());
  std::vector<std::pair<std::string, std::string>> finals;
  GradientGraph tail(model);
  for (const auto& w : wrt) {
    std::string gv = grads.grad_of(w);
    for (auto& e : grads.emitted()) emitted.push_back(std::move(e));
    grads.emitted().clear();
    if (gv.empty()) {
      std::string shape = tail.emit(w, "Shape", {w}, 1, {}, "")[0];
      int32_t t = grads.elem_type(w);
      gv = tail.emit(w, "ConstantOfShape", {shape}, 1,
                     {Attr::scalar_tensor("value", t ? t : 1, 0.0)}, "")[0];
    }
    finals.emplace_back(w, gv);
  }
  for (auto& e : tail.emitted()) emitted.push_back(std::move(e));
  for (auto& e : emitted) g.add_node(std::move(e));
  for (const auto& [w, gv] : finals) {
    std::string out = w + names::kGradSuffix;
    ir::Node id;
    id.op_type = "Identity";
    id.name = out + "/Identity";
    id.inputs = {gv};
    id.outputs = {out};
    g.add_node(std::move(id));
    ir::ValueInfo info;
    info.name = out;
    if (const onnx::TensorProto* t = g.find_initializer(w)) {
      auto type = std::make_shared<onnx::TypeProto>();
      type->mutable_tensor_type()->set_elem_type(t->data_type());
      auto* shape = type->mutable_tensor_type()->mutable_shape();
      for (int64_t d : t->dims()) shape->add_dim()->set_dim_value(d);
      info.type = type;
    } else if (const onnx::TypeProto* ty = g.type_of(w)) {
      info.type = std::make_shared<onnx::TypeProto>(*ty);
    }
    g.outputs.push_back(info);
  }
  g.renumber();
  ir::infer_shapes(model);
  return model;
}

}  // namespace graft::autodiff
