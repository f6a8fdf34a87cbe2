#include "autodiff/gradient.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "autodiff/gradient_graph.h"
#include "ir/constants.h"
#include "ir/error.h"
#include "ir/names.h"
#include "ir/schema.h"
#include "ir/serialize.h"
#include "ir/transforms/value_types.h"
#include "onnx/defs/parser.h"
#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"

namespace graft::autodiff {

// ---------------------------------------------------------------------------------------------
// GradientGraph

GradientGraph::GradientGraph(ir::Model& model) : model_(model), graph_(model.graph) {
  for (const auto& n : graph_.nodes) {
    for (const auto& o : n->outputs) taken_.insert(o);
  }
  for (const auto& t : graph_.initializers) taken_.insert(t->name());
  for (const auto& v : graph_.inputs) taken_.insert(v.name);
}

GradientGraph::GradientGraph(ir::Model& model, ir::Graph& graph, GradientGraph* parent)
    : model_(model), graph_(graph), parent_(parent) {}

std::string GradientGraph::fresh(const std::string& base) {
  if (parent_) return parent_->fresh(base);
  std::string name;
  do {
    name = base + "_grad/" + std::to_string(counter_++);
  } while (taken_.count(name));
  taken_.insert(name);
  return name;
}

std::vector<std::string> GradientGraph::emit(const std::string& base, const std::string& op_type,
                                             const std::vector<std::string>& inputs,
                                             int num_outputs, const std::vector<Attr>& attrs,
                                             const std::string& domain) {
  ir::Node n;
  n.op_type = op_type;
  n.domain = domain;
  n.inputs = inputs;
  for (int i = 0; i < num_outputs; ++i) n.outputs.push_back(fresh(base));
  n.name = n.outputs.empty() ? fresh(base) : n.outputs[0] + "/" + op_type;
  for (const auto& a : attrs) {
    ir::Attribute attr;
    attr.name = a.proto->name();
    attr.proto = a.proto;
    n.attributes.push_back(std::move(attr));
  }
  std::vector<std::string> outs = n.outputs;
  emitted_.push_back(std::move(n));
  return outs;
}

void GradientGraph::declare_function(const std::string& op_type, const char* body) {
  if (parent_) {
    parent_->declare_function(op_type, body);
    return;
  }
  for (const auto& f : model_.functions) {
    if (f->name() == op_type && f->domain() == names::kDomain) return;
  }
  auto f = std::make_shared<onnx::FunctionProto>();
  onnx::OnnxParser parser(body);
  auto status = parser.Parse(*f);
  if (!status.IsOK()) {
    throw InvalidArgument("function body of " + op_type +
                          " does not parse: " + status.ErrorMessage());
  }
  // Bodies are written against opset 18, the oldest a gradient model has; they import the
  // model's own ai.onnx version, as ONNX requires of model-local functions.
  for (auto& imp : *f->mutable_opset_import()) {
    if (imp.domain().empty()) imp.set_version(model_.opset(""));
  }
  model_.functions.push_back(f);
  model_.opset_imports[names::kDomain] = 1;
}

void GradientGraph::add_contribution(const std::string& value, const std::string& grad) {
  if (!grad.empty()) contributions_[value].push_back(grad);
}

std::string GradientGraph::grad_of(const std::string& value) {
  auto it = contributions_.find(value);
  if (it == contributions_.end() || it->second.empty()) return "";
  if (it->second.size() > 1) {
    std::string sum = emit(value, "Sum", it->second, 1, {}, "")[0];
    it->second = {sum};
  }
  return it->second[0];
}

std::optional<std::vector<int64_t>> GradientGraph::static_shape(const std::string& value) const {
  if (const onnx::TensorProto* t = graph_.find_initializer(value)) {
    return std::vector<int64_t>(t->dims().begin(), t->dims().end());
  }
  const onnx::TypeProto* type = graph_.type_of(value);
  if (!type && parent_) return parent_->static_shape(value);
  return ir::fixed_dims(type);
}

int64_t GradientGraph::rank_of(const std::string& value) const {
  if (const onnx::TensorProto* t = graph_.find_initializer(value)) return t->dims_size();
  const onnx::TypeProto* type = graph_.type_of(value);
  if (!type && parent_) return parent_->rank_of(value);
  if (!type || !type->has_tensor_type() || !type->tensor_type().has_shape()) return -1;
  return type->tensor_type().shape().dim_size();
}

int32_t GradientGraph::elem_type(const std::string& value) const {
  if (const onnx::TensorProto* t = graph_.find_initializer(value)) return t->data_type();
  const onnx::TypeProto* type = graph_.type_of(value);
  if (type && type->has_tensor_type()) return type->tensor_type().elem_type();
  return parent_ ? parent_->elem_type(value) : 0;
}

// ---------------------------------------------------------------------------------------------
// Attr

namespace {

Attr make_attr(const std::string& name, onnx::AttributeProto::AttributeType type) {
  Attr a;
  a.proto = std::make_shared<onnx::AttributeProto>();
  a.proto->set_name(name);
  a.proto->set_type(type);
  return a;
}

}  // namespace

Attr Attr::i(const std::string& name, int64_t value) {
  Attr a = make_attr(name, onnx::AttributeProto::INT);
  a.proto->set_i(value);
  return a;
}

Attr Attr::f(const std::string& name, float value) {
  Attr a = make_attr(name, onnx::AttributeProto::FLOAT);
  a.proto->set_f(value);
  return a;
}

Attr Attr::s(const std::string& name, const std::string& value) {
  Attr a = make_attr(name, onnx::AttributeProto::STRING);
  a.proto->set_s(value);
  return a;
}

Attr Attr::ints(const std::string& name, const std::vector<int64_t>& values) {
  Attr a = make_attr(name, onnx::AttributeProto::INTS);
  for (int64_t v : values) a.proto->add_ints(v);
  return a;
}

Attr Attr::scalar_tensor(const std::string& name, int32_t dtype, double value) {
  Attr a = make_attr(name, onnx::AttributeProto::TENSOR);
  onnx::TensorProto* t = a.proto->mutable_t();
  t->set_data_type(dtype);
  t->add_dims(1);
  switch (dtype) {
    case onnx::TensorProto::DOUBLE:
      t->add_double_data(value);
      break;
    case onnx::TensorProto::INT64:
      t->add_int64_data(static_cast<int64_t>(value));
      break;
    case onnx::TensorProto::INT32:
      t->add_int32_data(static_cast<int32_t>(value));
      break;
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::BFLOAT16: {
      // Written as float and cast where used would need a node; store the bits instead.
      float f = static_cast<float>(value);
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      if (dtype == onnx::TensorProto::BFLOAT16) {
        t->add_int32_data(static_cast<int32_t>(bits >> 16));
      } else {
        // Truncating conversion: exact for the small constants rules use (0, 1, 0.5, 2, ...).
        uint32_t sign = (bits >> 16) & 0x8000u, exp = (bits >> 23) & 0xffu, mant = bits & 0x7fffffu;
        uint32_t h = exp == 0 ? sign : (sign | ((exp - 112) << 10) | (mant >> 13));
        t->add_int32_data(static_cast<int32_t>(h));
      }
      break;
    }
    default:
      t->set_data_type(onnx::TensorProto::FLOAT);
      t->add_float_data(static_cast<float>(value));
  }
  return a;
}

std::vector<Attr> Attr::copy(const ir::Node& node, const std::vector<std::string>& names) {
  std::vector<Attr> out;
  for (const auto& name : names) {
    if (const ir::Attribute* a = node.find_attr(name)) out.push_back(Attr{a->proto});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// RuleContext

RuleContext::RuleContext(GradientGraph& graph, const ir::Node& node, int64_t opset)
    : graph_(graph), node_(node), opset_(opset) {}

const std::string& RuleContext::input(int i) const {
  static const std::string empty;
  return i >= 0 && i < num_inputs() ? node_.inputs[static_cast<size_t>(i)] : empty;
}

const std::string& RuleContext::output(int i) const {
  static const std::string empty;
  return i >= 0 && i < num_outputs() ? node_.outputs[static_cast<size_t>(i)] : empty;
}

std::string RuleContext::output_grad(int i) const {
  const std::string& name = output(i);
  return name.empty() ? std::string() : graph_.grad_of(name);
}

bool RuleContext::needs_input_grad(int i) const {
  const std::string& name = input(i);
  return !name.empty() && graph_.needs_grad(name);
}

void RuleContext::set_input_grad(int i, const std::string& value) {
  if (needs_input_grad(i)) graph_.add_contribution(input(i), value);
}

std::vector<std::string> RuleContext::emit(const std::string& op_type,
                                           const std::vector<std::string>& inputs, int num_outputs,
                                           const std::vector<Attr>& attrs,
                                           const std::string& domain) {
  const std::string base = node_.name.empty() ? node_.op_type : node_.name;
  return graph_.emit(base, op_type, inputs, num_outputs, attrs, domain);
}

std::string RuleContext::emit1(const std::string& op_type, const std::vector<std::string>& inputs,
                               const std::vector<Attr>& attrs, const std::string& domain) {
  return emit(op_type, inputs, 1, attrs, domain)[0];
}

std::string RuleContext::emit_fused(const std::string& op_type,
                                    const std::vector<std::string>& inputs,
                                    const std::vector<Attr>& attrs, const char* body) {
  graph_.declare_function(op_type, body);
  return emit1(op_type, inputs, attrs, names::kDomain);
}

std::vector<std::string> RuleContext::emit_fused(const std::string& op_type,
                                                 const std::vector<std::string>& inputs,
                                                 const std::vector<bool>& wanted,
                                                 const std::vector<Attr>& attrs, const char* body) {
  graph_.declare_function(op_type, body);
  std::vector<std::string> names =
      emit(op_type, inputs, static_cast<int>(wanted.size()), attrs, names::kDomain);
  ir::Node& node = graph_.emitted().back();
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (!wanted[i]) names[i] = node.outputs[i] = "";
  }
  return names;
}

std::string RuleContext::scalar_like(double value, const std::string& like) {
  const int32_t dtype = graph_.elem_type(like);
  if (dtype == 0) {
    // Type known only at run time (an emitted value): a double constant cast like it.
    std::string c =
        emit1("Constant", {}, {Attr::scalar_tensor("value", onnx::TensorProto::DOUBLE, value)});
    return emit1("CastLike", {emit1("Reshape", {c, ints_constant({})}), like});
  }
  std::string c = emit1("Constant", {}, {Attr::scalar_tensor("value", dtype, value)});
  return emit1("Reshape", {c, ints_constant({})});
}

std::string RuleContext::ints_constant(const std::vector<int64_t>& values) {
  Attr a;
  a.proto = std::make_shared<onnx::AttributeProto>();
  a.proto->set_name("value");
  a.proto->set_type(onnx::AttributeProto::TENSOR);
  onnx::TensorProto* t = a.proto->mutable_t();
  t->set_data_type(onnx::TensorProto::INT64);
  t->add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) t->add_int64_data(v);
  return emit1("Constant", {}, {a});
}

std::optional<std::vector<int64_t>> RuleContext::static_shape(const std::string& value) const {
  return graph_.static_shape(value);
}

std::string RuleContext::unbroadcast(const std::string& grad, const std::string& target) {
  // When every other operand is all ones of no higher rank (a scalar multiplier, say), the
  // broadcast result has the target's shape even if its dims are known only at run time.
  const int64_t rank = graph_.rank_of(target);
  bool others_trivial = rank >= 0;
  bool target_seen = false;
  for (const auto& in : node_.inputs) {
    if (!others_trivial) break;
    if (in == target && !target_seen) {
      target_seen = true;
      continue;
    }
    if (in.empty()) continue;
    const auto s = graph_.static_shape(in);
    others_trivial = s && static_cast<int64_t>(s->size()) <= rank &&
                     std::all_of(s->begin(), s->end(), [](int64_t d) { return d == 1; });
  }
  if (others_trivial && target_seen) return grad;
  return unbroadcast(grad, target, graph_.static_shape(output(0)));
}

std::string RuleContext::unbroadcast(const std::string& grad, const std::string& target,
                                     const std::optional<std::vector<int64_t>>& grad_shape) {
  auto gs = grad_shape, ts = graph_.static_shape(target);
  const bool dims_known =
      gs && std::none_of(gs->begin(), gs->end(), [](int64_t d) { return d < 0; });
  if (dims_known && ts) {
    if (*gs == *ts) return grad;
    const size_t pad = gs->size() - std::min(gs->size(), ts->size());
    std::vector<int64_t> axes;
    for (size_t d = 0; d < gs->size(); ++d) {
      const int64_t t = d < pad ? 1 : (*ts)[d - pad];
      if (t == 1 && (*gs)[d] != 1) axes.push_back(static_cast<int64_t>(d));
    }
    std::string reduced = grad;
    if (!axes.empty())
      reduced = emit1("ReduceSum", {grad, ints_constant(axes)}, {Attr::i("keepdims", 1)});
    return emit1("Reshape", {reduced, ints_constant(*ts)});
  }
  // Ranks known, some dimensions not: the leading axes the target lacks are summed statically,
  // the axes where the target has size 1 are found at run time.
  const int64_t rank_g = grad_shape ? static_cast<int64_t>(grad_shape->size()) : -1;
  const int64_t rank_t = graph_.rank_of(target);
  if (rank_g >= 0 && rank_t >= 0 && rank_g >= rank_t) {
    std::string g = grad;
    if (rank_g > rank_t) {
      std::vector<int64_t> lead;
      for (int64_t d = 0; d < rank_g - rank_t; ++d) lead.push_back(d);
      g = emit1("ReduceSum", {grad, ints_constant(lead)}, {Attr::i("keepdims", 0)});
    }
    std::string shape_t = emit1("Shape", {target});
    std::string one = ints_constant({1});
    std::string mask = emit1("And", {emit1("Equal", {shape_t, one}),
                                     emit1("Not", {emit1("Equal", {emit1("Shape", {g}), one})})});
    std::string axes = emit1("Reshape", {emit1("NonZero", {mask}), ints_constant({-1})});
    return emit1("ReduceSum", {g, axes},
                 {Attr::i("keepdims", 1), Attr::i("noop_with_empty_axes", 1)});
  }
  // Ranks unknown too: pad the target's shape with leading ones at run time.
  std::string shape_g = emit1("Shape", {grad}), shape_t = emit1("Shape", {target});
  std::string rank_gv = emit1("Size", {shape_g}), rank_tv = emit1("Size", {shape_t});
  std::string pad = emit1("Unsqueeze", {emit1("Sub", {rank_gv, rank_tv}), ints_constant({0})});
  std::string ones =
      emit1("ConstantOfShape", {pad}, {Attr::scalar_tensor("value", onnx::TensorProto::INT64, 1)});
  std::string padded = emit1("Concat", {ones, shape_t}, {Attr::i("axis", 0)});
  std::string one = ints_constant({1});
  std::string mask =
      emit1("And", {emit1("Equal", {padded, one}), emit1("Not", {emit1("Equal", {shape_g, one})})});
  std::string axes = emit1("Reshape", {emit1("NonZero", {mask}), ints_constant({-1})});
  std::string reduced = emit1("ReduceSum", {grad, axes},
                              {Attr::i("keepdims", 1), Attr::i("noop_with_empty_axes", 1)});
  return emit1("Reshape", {reduced, shape_t});
}

int64_t RuleContext::static_rank(const std::string& value) const { return graph_.rank_of(value); }

int32_t RuleContext::elem_type(const std::string& value) const { return graph_.elem_type(value); }

std::optional<std::vector<int64_t>> RuleContext::constant_ints(const std::string& value) const {
  return ir::constant_ints(graph_.graph(), value);
}

int64_t RuleContext::attr_int(const std::string& name, int64_t fallback) const {
  const ir::Attribute* a = node_.find_attr(name);
  return a ? a->proto->i() : fallback;
}

float RuleContext::attr_float(const std::string& name, float fallback) const {
  const ir::Attribute* a = node_.find_attr(name);
  return a ? a->proto->f() : fallback;
}

std::string RuleContext::attr_string(const std::string& name, const std::string& fallback) const {
  const ir::Attribute* a = node_.find_attr(name);
  return a ? a->proto->s() : fallback;
}

std::vector<int64_t> RuleContext::attr_ints(const std::string& name) const {
  const ir::Attribute* a = node_.find_attr(name);
  if (!a) return {};
  return {a->proto->ints().begin(), a->proto->ints().end()};
}

void RuleContext::fail(const std::string& message) const {
  throw InvalidArgument(node_.describe() + ": gradient: " + message);
}

// ---------------------------------------------------------------------------------------------
// Registry

void RuleRegistry::add(RuleDef def) {
  def.domain = ir::canonical_domain(def.domain);
  defs_.push_back(std::move(def));
}

const RuleDef* RuleRegistry::find(const std::string& domain, const std::string& op_type,
                                  int since_version) const {
  for (const auto& d : defs_) {
    if (d.op_type == op_type && d.domain == domain && since_version >= d.since &&
        since_version <= d.until)
      return &d;
  }
  return nullptr;
}

RuleRegistry& gradient_rules() {
  static RuleRegistry registry;
  return registry;
}

}  // namespace graft::autodiff
