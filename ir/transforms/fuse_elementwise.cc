#include "ir/transforms/fuse_elementwise.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "ir/names.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {

std::string fused_elementwise_op(int k) { return "FusedElementwise_" + std::to_string(k); }

int fused_step_arity(const std::string& op) {
  static const std::map<std::string, int> arity = {
      {"Relu", 1},      {"Neg", 1},  {"Abs", 1},     {"Exp", 1}, {"Log", 1},
      {"Sqrt", 1},      {"Tanh", 1}, {"Sigmoid", 1}, {"Erf", 1}, {"Reciprocal", 1},
      {"Floor", 1},     {"Ceil", 1}, {"Sin", 1},     {"Cos", 1}, {"Softplus", 1},
      {"LeakyRelu", 1}, {"Elu", 1},  {"Gelu", 1},    {"Add", 2}, {"Sub", 2},
      {"Mul", 2},       {"Div", 2},  {"Pow", 2},     {"Max", 2}, {"Min", 2}};
  auto it = arity.find(op);
  return it == arity.end() ? 0 : it->second;
}

namespace {

bool is_float_type(int32_t elem_type) {
  return elem_type == onnx::TensorProto::FLOAT || elem_type == onnx::TensorProto::DOUBLE ||
         elem_type == onnx::TensorProto::FLOAT16 || elem_type == onnx::TensorProto::BFLOAT16;
}

float attr_float(const Node& n, const std::string& name, float fallback) {
  const Attribute* a = n.find_attr(name);
  return a ? a->proto->f() : fallback;
}

// The step's entry of the `alphas` attribute.
float step_alpha(const Node& n) {
  if (n.op_type == "LeakyRelu") return attr_float(n, "alpha", 0.01f);
  if (n.op_type == "Elu") return attr_float(n, "alpha", 1.0f);
  if (n.op_type == "Gelu") {
    const Attribute* a = n.find_attr("approximate");
    return a && a->proto->s() == "tanh" ? 1.0f : 0.0f;
  }
  return 0.0f;
}

bool same_shape(const onnx::TypeProto& a, const onnx::TypeProto& b) {
  if (!a.tensor_type().has_shape() || !b.tensor_type().has_shape()) return false;
  const auto& x = a.tensor_type().shape();
  const auto& y = b.tensor_type().shape();
  if (x.dim_size() != y.dim_size()) return false;
  for (int d = 0; d < x.dim_size(); ++d) {
    const auto& p = x.dim(d);
    const auto& q = y.dim(d);
    const bool values = p.has_dim_value() && q.has_dim_value() && p.dim_value() == q.dim_value();
    const bool params = p.has_dim_param() && q.has_dim_param() && !p.dim_param().empty() &&
                        p.dim_param() == q.dim_param();
    if (!values && !params) return false;
  }
  return true;
}

class Fuser {
 public:
  Fuser(Model& model, const std::function<bool(size_t)>& runs_fused)
      : model_(model), graph_(model.graph) {
    for (size_t i = 0; i < graph_.nodes.size(); ++i)
      candidate_.push_back(runs_fused(i) && fusible_op(*graph_.nodes[i]));
    if (std::count(candidate_.begin(), candidate_.end(), true) < 2) return;
    if (missing_types()) infer_shapes(model_);
    count_uses();
    for (size_t i = 0; i < graph_.nodes.size(); ++i)
      candidate_[i] = candidate_[i] && typed(*graph_.nodes[i]);
    for (const auto& f : model_.functions) {
      for (int k = 0; k < kMaxFusedBodies; ++k) {
        if (f->domain() == names::kDomain && f->name() == fused_elementwise_op(k)) {
          bodies_[body_key(*f)] = f->name();
          used_names_.insert(k);
        }
      }
    }
  }

  int run() {
    if (std::count(candidate_.begin(), candidate_.end(), true) < 2) return 0;
    for (const auto& chain : find_chains()) {
      if (!fuse(chain)) break;  // no op type left for a new body
    }
    if (fused_ > 0) {
      auto& nodes = graph_.nodes;
      nodes.erase(std::remove_if(nodes.begin(), nodes.end(),
                                 [&](const auto& n) { return removed_.count(n.get()) > 0; }),
                  nodes.end());
      graph_.renumber();
      if (!model_.opset_imports.count(names::kDomain)) model_.opset_imports[names::kDomain] = 1;
    }
    return fused_;
  }

 private:
  // An ai.onnx op of the fused vocabulary with its inputs all present and one output.
  bool fusible_op(const Node& n) const {
    const int arity = fused_step_arity(n.op_type);
    if (!n.domain.empty() || arity == 0 || n.inputs.size() != static_cast<size_t>(arity) ||
        n.outputs.size() != 1 || n.outputs[0].empty())
      return false;
    for (const auto& in : n.inputs) {
      if (in.empty()) return false;
    }
    return std::none_of(n.attributes.begin(), n.attributes.end(),
                        [](const Attribute& a) { return !a.graphs.empty(); });
  }

  int32_t elem_type(const std::string& value) const {
    if (const onnx::TypeProto* t = graph_.type_of(value))
      return t->has_tensor_type() ? t->tensor_type().elem_type() : 0;
    if (const onnx::TensorProto* init = graph_.find_initializer(value)) return init->data_type();
    return 0;
  }

  bool missing_types() const {
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      if (candidate_[i] && !graph_.type_of(graph_.nodes[i]->outputs[0])) return true;
    }
    return false;
  }

  // Output and inputs of one floating-point type, and the output's shape known.
  bool typed(const Node& n) const {
    const onnx::TypeProto* out = graph_.type_of(n.outputs[0]);
    if (!out || !out->has_tensor_type() || !out->tensor_type().has_shape()) return false;
    const int32_t type = out->tensor_type().elem_type();
    if (!is_float_type(type)) return false;
    return std::all_of(n.inputs.begin(), n.inputs.end(),
                       [&](const std::string& in) { return elem_type(in) == type; });
  }

  // Reads of each value: node inputs, nested graphs' outer-scope reads, graph outputs.
  void count_uses() {
    for (const auto& n : graph_.nodes) {
      for (const auto& in : n->inputs) ++uses_[in];
      for (const auto& a : n->attributes) {
        for (const auto& g : a.graphs) {
          for (const auto& v : g->free_variables()) ++uses_[v];
        }
      }
    }
    for (const auto& out : graph_.outputs) ++uses_[out.name];
  }

  // The node after `i` in a chain: the only reader of i's output, itself a candidate of the
  // same output shape; -1 when none.
  int successor(size_t i, const std::map<std::string, size_t>& reader) const {
    const Node& n = *graph_.nodes[i];
    auto it = reader.find(n.outputs[0]);
    if (it == reader.end()) return -1;
    const Node& next = *graph_.nodes[it->second];
    const int reads =
        static_cast<int>(std::count(next.inputs.begin(), next.inputs.end(), n.outputs[0]));
    if (uses_.at(n.outputs[0]) != reads) return -1;
    if (!same_shape(*graph_.type_of(n.outputs[0]), *graph_.type_of(next.outputs[0]))) return -1;
    return static_cast<int>(it->second);
  }

  // Maximal chains of at least two nodes, cut where a node would exceed the kernel's limits.
  std::vector<std::vector<Node*>> find_chains() const {
    // The candidate that reads each candidate's output (the first such, for a node reading two).
    std::map<std::string, size_t> reader;
    std::vector<bool> has_predecessor(graph_.nodes.size(), false);
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      if (!candidate_[i]) continue;
      for (const auto& in : graph_.nodes[i]->inputs) reader.emplace(in, i);
    }
    std::vector<int> next(graph_.nodes.size(), -1);
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      if (!candidate_[i]) continue;
      const int s = successor(i, reader);
      // A node continues one chain only: a second predecessor's chain ends before it.
      if (s >= 0 && !has_predecessor[static_cast<size_t>(s)]) {
        next[i] = s;
        has_predecessor[static_cast<size_t>(s)] = true;
      }
    }
    std::vector<std::vector<Node*>> chains;
    for (size_t head = 0; head < graph_.nodes.size(); ++head) {
      if (!candidate_[head] || has_predecessor[head]) continue;
      std::vector<Node*> chain;
      std::vector<std::string> inputs;
      for (int i = static_cast<int>(head); i >= 0; i = next[static_cast<size_t>(i)]) {
        Node& n = *graph_.nodes[static_cast<size_t>(i)];
        std::vector<std::string> more = inputs;
        for (const auto& in : n.inputs) {
          const bool previous = !chain.empty() && in == chain.back()->outputs[0];
          if (!previous && std::find(more.begin(), more.end(), in) == more.end())
            more.push_back(in);
        }
        if (chain.size() == static_cast<size_t>(kMaxFusedSteps) ||
            more.size() > static_cast<size_t>(kMaxFusedInputs)) {
          if (chain.size() >= 2) chains.push_back(chain);
          chain.clear();
          more.assign(n.inputs.begin(), n.inputs.end());
          more.erase(std::unique(more.begin(), more.end()), more.end());
        }
        chain.push_back(&n);
        inputs = std::move(more);
      }
      if (chain.size() >= 2) chains.push_back(chain);
    }
    return chains;
  }

  // The function declaring the chain, and the fused node's inputs and attributes.
  struct Fused {
    std::shared_ptr<onnx::FunctionProto> body;
    std::vector<std::string> inputs;
    std::vector<std::string> ops;
    std::vector<int64_t> operands;
    std::vector<float> alphas;
  };

  Fused describe(const std::vector<Node*>& chain) const {
    Fused f;
    f.body = std::make_shared<onnx::FunctionProto>();
    f.body->set_domain(names::kDomain);
    auto* imp = f.body->add_opset_import();
    imp->set_domain("");
    imp->set_version(model_.opset(""));
    std::string previous;
    for (size_t k = 0; k < chain.size(); ++k) {
      const Node& n = *chain[k];
      onnx::NodeProto* step = f.body->add_node();
      step->set_op_type(n.op_type);
      for (const auto& a : n.attributes) *step->add_attribute() = *a.proto;
      std::vector<int64_t> operands;
      for (const auto& in : n.inputs) {
        if (!previous.empty() && in == previous) {
          step->add_input("t" + std::to_string(k - 1));
          operands.push_back(kFusedPrevious);
          continue;
        }
        auto it = std::find(f.inputs.begin(), f.inputs.end(), in);
        if (it == f.inputs.end()) it = f.inputs.insert(f.inputs.end(), in);
        const auto j = static_cast<int64_t>(it - f.inputs.begin());
        step->add_input("x" + std::to_string(j));
        operands.push_back(j);
      }
      if (operands.size() == 1) operands.push_back(kFusedNone);
      step->add_output(k + 1 == chain.size() ? std::string("y") : "t" + std::to_string(k));
      f.ops.push_back(n.op_type);
      f.operands.insert(f.operands.end(), operands.begin(), operands.end());
      f.alphas.push_back(step_alpha(n));
      previous = n.outputs[0];
    }
    for (size_t j = 0; j < f.inputs.size(); ++j) f.body->add_input("x" + std::to_string(j));
    f.body->add_output("y");
    return f;
  }

  // Bodies compare by everything but their name and documentation.
  static std::string body_key(const onnx::FunctionProto& f) {
    onnx::FunctionProto copy = f;
    copy.clear_name();
    copy.clear_doc_string();
    return copy.SerializeAsString();
  }

  // The op type of `body`: an existing function's, or a new one declared. Empty when every name
  // is taken.
  std::string op_type_of(onnx::FunctionProto& body) {
    const std::string key = body_key(body);
    auto it = bodies_.find(key);
    if (it != bodies_.end()) return it->second;
    int k = 0;
    while (k < kMaxFusedBodies && used_names_.count(k)) ++k;
    if (k == kMaxFusedBodies) return "";
    used_names_.insert(k);
    body.set_name(fused_elementwise_op(k));
    body.set_doc_string(
        "graft's fused elementwise chain (ir/transforms/fuse_elementwise.h): the nodes it "
        "replaced.");
    model_.functions.push_back(std::make_shared<onnx::FunctionProto>(body));
    return bodies_[key] = body.name();
  }

  bool fuse(const std::vector<Node*>& chain) {
    Fused f = describe(chain);
    const std::string op_type = op_type_of(*f.body);
    if (op_type.empty()) return false;
    Node& last = *chain.back();
    Node node;
    node.op_type = op_type;
    node.domain = names::kDomain;
    node.name = (last.name.empty() ? last.outputs[0] : last.name) + "/FusedElementwise";
    node.inputs = f.inputs;
    node.outputs = last.outputs;
    auto strings = std::make_shared<onnx::AttributeProto>();
    strings->set_name("ops");
    strings->set_type(onnx::AttributeProto::STRINGS);
    for (const auto& op : f.ops) strings->add_strings(op);
    node.attributes.push_back({"ops", strings, {}});
    node.attributes.push_back(ints_attribute("operands", f.operands));
    auto floats = std::make_shared<onnx::AttributeProto>();
    floats->set_name("alphas");
    floats->set_type(onnx::AttributeProto::FLOATS);
    for (float a : f.alphas) floats->add_floats(a);
    node.attributes.push_back({"alphas", floats, {}});
    // The fused node takes the last node's place; the chain's other nodes go.
    for (size_t k = 0; k + 1 < chain.size(); ++k) {
      graph_.value_info.erase(chain[k]->outputs[0]);
      removed_.insert(chain[k]);
    }
    last = std::move(node);
    ++fused_;
    return true;
  }

  Model& model_;
  Graph& graph_;
  std::vector<bool> candidate_;
  std::map<std::string, int> uses_;
  std::map<std::string, std::string> bodies_;  // body key -> op type
  std::set<int> used_names_;
  std::set<const Node*> removed_;
  int fused_ = 0;
};

}  // namespace

int fuse_elementwise(Model& model, const std::function<bool(size_t)>& runs_fused) {
  return Fuser(model, runs_fused).run();
}

}  // namespace graft::ir
