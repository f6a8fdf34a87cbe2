#include "ir/transforms/nchwc.h"

#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ir/names.h"
#include "ir/transforms/layout_util.h"
#include "onnx/defs/tensor_proto_util.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {
namespace {

constexpr char kBlockedSuffix[] = "_nchwc";

const onnx::TensorProto* float_initializer(const Graph& g, const std::string& name) {
  if (name.empty() || g.is_graph_input(name)) return nullptr;
  const onnx::TensorProto* t = g.find_initializer(name);
  return t && t->data_type() == onnx::TensorProto::FLOAT ? t : nullptr;
}

std::vector<int64_t> ints_of(const Node& n, const std::string& name) {
  const Attribute* a = n.find_attr(name);
  if (!a) return {};
  return {a->proto->ints().begin(), a->proto->ints().end()};
}

int64_t int_of(const Node& n, const std::string& name, int64_t fallback) {
  const Attribute* a = n.find_attr(name);
  return a ? a->proto->i() : fallback;
}

float float_of(const Node& n, const std::string& name, float fallback) {
  const Attribute* a = n.find_attr(name);
  return a ? a->proto->f() : fallback;
}

Attribute floats_attribute(const std::string& name, const std::vector<float>& values) {
  Attribute a;
  a.name = name;
  a.proto = std::make_shared<onnx::AttributeProto>();
  a.proto->set_name(name);
  a.proto->set_type(onnx::AttributeProto::FLOATS);
  for (float v : values) a.proto->add_floats(v);
  return a;
}

void set_attribute(Node& n, Attribute a) {
  for (auto& old : n.attributes) {
    if (old.name == a.name) {
      old = std::move(a);
      return;
    }
  }
  n.attributes.push_back(std::move(a));
}

// The channels of a Conv's output when it can run blocked, else nullopt.
std::optional<int64_t> blocked_conv_maps(const Graph& g, const Node& n) {
  if (n.op_type != "Conv" || !n.domain.empty() || n.inputs.size() < 2 || n.inputs.size() > 3 ||
      n.outputs.size() != 1 || n.inputs[0].empty())
    return std::nullopt;
  const onnx::TensorProto* w = float_initializer(g, n.inputs[1]);
  if (!w || w->dims_size() != 4) return std::nullopt;
  if (n.inputs.size() == 3 && !n.inputs[2].empty()) {
    const onnx::TensorProto* b = float_initializer(g, n.inputs[2]);
    if (!b || b->dims_size() != 1 || b->dims(0) != w->dims(0)) return std::nullopt;
  }
  const int64_t group = int_of(n, "group", 1);
  const bool depthwise = group > 1 && w->dims(1) == 1 && w->dims(0) == group;
  if (group != 1 && !depthwise) return std::nullopt;
  if (!ints_of(n, "kernel_shape").empty() && ints_of(n, "kernel_shape").size() != 2)
    return std::nullopt;
  return w->dims(0);
}

struct Activation {
  std::string op;
  std::vector<float> params;
};

std::optional<float> scalar_initializer(const Graph& g, const std::string& name) {
  const onnx::TensorProto* t = float_initializer(g, name);
  if (!t) return std::nullopt;
  const std::vector<float> data = onnx::ParseData<float>(t);
  if (data.size() != 1) return std::nullopt;
  return data[0];
}

// The activation `n` computes, as NchwcConv's attributes spell it; nullopt when `n` is none of
// them (or a Clip with bounds that are not constant).
std::optional<Activation> activation_of(const Graph& g, const Node& n) {
  if (!n.domain.empty() || n.inputs.empty() || n.inputs[0].empty() || n.outputs.size() != 1)
    return std::nullopt;
  if ((n.op_type == "Relu" || n.op_type == "Sigmoid") && n.inputs.size() == 1)
    return Activation{n.op_type, {}};
  if (n.op_type == "LeakyRelu" && n.inputs.size() == 1)
    return Activation{n.op_type, {float_of(n, "alpha", 0.01f)}};
  if (n.op_type == "HardSigmoid" && n.inputs.size() == 1)
    return Activation{n.op_type, {float_of(n, "alpha", 0.2f), float_of(n, "beta", 0.5f)}};
  if (n.op_type != "Clip") return std::nullopt;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  // Before opset 11 the bounds are attributes; from 11 optional inputs.
  Activation clip{"Clip", {float_of(n, "min", -kInf), float_of(n, "max", kInf)}};
  for (size_t i = 1; i < n.inputs.size() && i < 3; ++i) {
    if (n.inputs[i].empty()) continue;
    const std::optional<float> bound = scalar_initializer(g, n.inputs[i]);
    if (!bound) return std::nullopt;
    clip.params[i - 1] = *bound;
  }
  return n.inputs.size() <= 3 ? std::optional<Activation>(clip) : std::nullopt;
}

bool blocked_pool(const Node& n) {
  const bool one_output = n.outputs.size() == 1 || (n.outputs.size() == 2 && n.outputs[1].empty());
  return (n.op_type == "MaxPool" || n.op_type == "AveragePool") && n.domain.empty() && one_output &&
         n.inputs.size() == 1 && ints_of(n, "kernel_shape").size() == 2;
}

// The pooling window over [H, W] as a window over [H, W, b] of 1 along the block.
void pool_over_blocks(Node& n) {
  auto extend = [&](const std::string& name, const std::vector<int64_t>& tail) {
    std::vector<int64_t> v = ints_of(n, name);
    if (v.empty()) return;
    if (tail.size() == 1) {
      v.push_back(tail[0]);
    } else {
      v.insert(v.begin() + 2, 0);
      v.push_back(0);
    }
    set_attribute(n, ints_attribute(name, v));
  };
  extend("kernel_shape", {1});
  extend("strides", {1});
  extend("dilations", {1});
  extend("pads", {0, 0});
}

struct Rewrite {
  Graph& g;
  // Blocked values, with their channel counts.
  std::map<std::string, int64_t> channels;
  std::set<const Node*> blocked;

  // The node that alone reads `value`, if it runs blocked and `value` is no graph output.
  Node* sole_blocked_reader(const std::string& value) const {
    if (g.is_graph_output(value)) return nullptr;
    const std::vector<Node*> readers = g.consumers(value);
    if (readers.size() != 1 || !blocked.count(readers[0])) return nullptr;
    return readers[0];
  }

  // `reader`, which alone reads `conv`'s output, is folded away: `conv` writes its output.
  void fold(Node& conv, Node* reader) {
    const std::string old = conv.outputs[0];
    conv.outputs[0] = reader->outputs[0];
    channels.erase(old);
    g.value_info.erase(old);
    blocked.erase(reader);
    g.remove_node(reader);
  }

  void fold_activation(Node& conv, const std::string& attr) {
    Node* reader = sole_blocked_reader(conv.outputs[0]);
    if (!reader || reader->inputs[0] != conv.outputs[0]) return;
    const std::optional<Activation> act = activation_of(g, *reader);
    if (!act) return;
    set_attribute(conv, string_attribute(attr, act->op));
    set_attribute(conv, floats_attribute(attr + "_params", act->params));
    fold(conv, reader);
  }

  void fuse(Node& conv) {
    fold_activation(conv, "activation");
    Node* add = sole_blocked_reader(conv.outputs[0]);
    if (!add || add->op_type != "Add" || add->inputs[0] == add->inputs[1]) return;
    const std::string other = add->inputs[0] == conv.outputs[0] ? add->inputs[1] : add->inputs[0];
    conv.inputs.resize(4);
    conv.inputs[3] = other;
    fold(conv, add);
    fold_activation(conv, "sum_activation");
  }
};

}  // namespace

int convert_to_nchwc(Model& model, const std::function<bool(size_t node)>& runs_blocked) {
  Graph& g = model.graph;
  Rewrite r{g, {}, {}};
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = *g.nodes[i];
    if (!runs_blocked(i)) continue;
    auto blocked_in = [&](size_t k) {
      return k < n.inputs.size() && r.channels.count(n.inputs[k]) > 0;
    };
    std::optional<int64_t> c;
    if (const auto maps = blocked_conv_maps(g, n)) {
      c = maps;
    } else if (blocked_in(0) && (activation_of(g, n) || blocked_pool(n))) {
      c = r.channels.at(n.inputs[0]);
    } else if (n.op_type == "Add" && n.domain.empty() && n.inputs.size() == 2 &&
               n.outputs.size() == 1 && blocked_in(0) && blocked_in(1) &&
               r.channels.at(n.inputs[0]) == r.channels.at(n.inputs[1])) {
      c = r.channels.at(n.inputs[0]);
    }
    if (!c) continue;
    r.blocked.insert(&n);
    r.channels[n.outputs[0]] = *c;
  }
  if (r.blocked.empty()) return 0;

  std::vector<Node*> convs;
  for (const auto& n : g.nodes) {
    if (r.blocked.count(n.get()) && n->op_type == "Conv") convs.push_back(n.get());
  }
  for (Node* conv : convs) r.fuse(*conv);

  NameSource names(g);
  const auto fresh = [&](const std::string& base) { return names.fresh(base); };
  std::map<std::string, std::string> blocked_name;
  for (const auto& [value, c] : r.channels) blocked_name[value] = fresh(value + kBlockedSuffix);
  std::map<std::string, bool> plain_readers;
  for (const auto& [value, c] : r.channels)
    plain_readers[value] = read_outside(g, value, r.blocked);

  std::map<std::string, std::string> reordered_inputs;
  std::vector<std::unique_ptr<Node>> nodes;
  for (auto& owned : g.nodes) {
    Node& n = *owned;
    if (!r.blocked.count(&n)) {
      nodes.push_back(std::move(owned));
      continue;
    }
    const bool conv = n.op_type == "Conv";
    // Data inputs: the conv's X and Sum, the Add's two, the others' first.
    std::vector<size_t> data = {0};
    if (conv && n.inputs.size() == 4) data.push_back(3);
    if (n.op_type == "Add") data.push_back(1);
    for (size_t k : data) {
      std::string& in = n.inputs[k];
      if (blocked_name.count(in)) {
        in = blocked_name.at(in);
        continue;
      }
      const onnx::TensorProto* w = g.find_initializer(n.inputs[1]);
      if (w->dims(1) * int_of(n, "group", 1) <= kNchwcPlainChannels) continue;
      auto [it, added] = reordered_inputs.emplace(in, "");
      if (added) {
        it->second = fresh(in + kBlockedSuffix);
        Node reorder;
        reorder.name = fresh(in + "_to_nchwc");
        reorder.op_type = "ReorderInput";
        reorder.domain = names::kDomain;
        reorder.inputs = {in};
        reorder.outputs = {it->second};
        nodes.push_back(std::make_unique<Node>(std::move(reorder)));
      }
      in = it->second;
    }
    if (conv) {
      n.op_type = "NchwcConv";
      n.domain = names::kDomain;
    } else if (blocked_pool(n) && n.op_type == "MaxPool") {
      n.op_type = "NhwcMaxPool";
      n.domain = names::kDomain;
    } else if (blocked_pool(n)) {
      pool_over_blocks(n);
    }
    const std::string out = n.outputs[0];
    n.outputs[0] = blocked_name.at(out);
    nodes.push_back(std::move(owned));
    if (!plain_readers.at(out)) {
      g.value_info.erase(out);
      continue;
    }
    Node reorder;
    reorder.name = fresh(out + "_from_nchwc");
    reorder.op_type = "ReorderOutput";
    reorder.domain = names::kDomain;
    reorder.inputs = {blocked_name.at(out)};
    reorder.outputs = {out};
    reorder.attributes.push_back(int_attribute("channels", r.channels.at(out)));
    nodes.push_back(std::make_unique<Node>(std::move(reorder)));
  }
  g.nodes = std::move(nodes);
  // A conv that took an Add's operand reads a value made after the conv's old place.
  g.topological_sort();
  g.renumber();
  if (!model.opset_imports.count(names::kDomain)) model.opset_imports[names::kDomain] = 1;
  return static_cast<int>(r.blocked.size());
}

}  // namespace graft::ir
