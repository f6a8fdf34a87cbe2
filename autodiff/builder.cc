// build_gradient_graph: walks the forward graph backwards from the loss, asking each node's
// gradient rule for the gradients of its inputs.
#include <deque>
#include <map>
#include <set>

#include "autodiff/gradient.h"
#include "autodiff/gradient_graph.h"
#include "ir/error.h"
#include "ir/schema.h"
#include "ir/serialize.h"
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

// Differentiable values reachable forward from `sources` through node inputs -> outputs.
std::set<std::string> forward_reach(const ir::Graph& g, const std::vector<std::string>& sources) {
  std::set<std::string> reach(sources.begin(), sources.end());
  for (const auto& n : g.nodes) {  // nodes are in topological order
    bool hit = false;
    for (const auto& i : n->inputs) hit = hit || reach.count(i);
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

ir::Model build_gradient_graph(const ir::Model& forward, const std::string& loss,
                               const std::vector<std::string>& wrt_in) {
  ir::Model model =
      forward.opset("") < kMinOpset ? ir::convert_opset(forward, kConvertTo) : forward.clone();
  ir::infer_shapes(model);
  ir::Graph& g = model.graph;
  const int64_t opset = model.opset("");

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

  // Nodes between the parameters and the loss, in reverse topological order.
  std::set<std::string> from_wrt = forward_reach(g, wrt);
  std::set<std::string> to_loss = {loss};
  std::vector<const ir::Node*> order;
  for (auto it = g.nodes.rbegin(); it != g.nodes.rend(); ++it) {
    const ir::Node& n = **it;
    bool feeds_loss = false;
    for (const auto& o : n.outputs) feeds_loss = feeds_loss || (to_loss.count(o) && from_wrt.count(o));
    if (!feeds_loss) continue;
    bool from_params = false;
    for (const auto& i : n.inputs) from_params = from_params || from_wrt.count(i);
    if (!from_params) continue;
    for (const auto& i : n.inputs) {
      if (!i.empty()) to_loss.insert(i);
    }
    order.push_back(&n);
  }
  std::set<std::string> needs;
  for (const auto& v : from_wrt) {
    if (to_loss.count(v)) needs.insert(v);
  }

  GradientGraph grads(model);
  grads.set_needs_grad(needs);
  // Seed: d loss / d loss = 1 for every element of the loss.
  int32_t loss_type = grads.elem_type(loss);
  if (loss_type == 0) loss_type = onnx::TensorProto::FLOAT;
  std::string loss_shape = grads.emit(loss, "Shape", {loss}, 1, {}, "")[0];
  grads.add_contribution(loss, grads.emit(loss, "ConstantOfShape", {loss_shape}, 1,
                                          {Attr::scalar_tensor("value", loss_type, 1.0)}, "")[0]);

  for (const ir::Node* n : order) {
    int64_t node_opset = model.opset(n->domain);
    const onnx::OpSchema* schema = ir::find_schema(n->domain, n->op_type, node_opset);
    int since = schema ? schema->SinceVersion() : static_cast<int>(node_opset);
    const RuleDef* rule = gradient_rules().find(n->domain, n->op_type, since);
    if (!rule) {
      throw NotImplemented("no gradient rule for op " + n->op_type + " (domain '" +
                           (n->domain.empty() ? std::string("ai.onnx") : n->domain) + "', opset " +
                           std::to_string(node_opset) + "), on the path " +
                           path_from_loss(g, loss, n));
    }
    RuleContext ctx(grads, *n, opset);
    rule->rule(ctx);
  }

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
    std::string out = w + "_grad";
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
