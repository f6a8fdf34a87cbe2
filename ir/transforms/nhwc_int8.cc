#include "ir/transforms/nhwc_int8.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/names.h"
#include "ir/transforms/layout_util.h"
#include "onnx/defs/tensor_proto_util.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {
namespace {

constexpr char kSuffix[] = "_nhwc";

// A constant: an initializer the caller cannot override with an input.
const onnx::TensorProto* constant(const Graph& g, const std::string& name) {
  if (name.empty() || g.is_graph_input(name)) return nullptr;
  return g.find_initializer(name);
}

// Whether every element of an 8-bit initializer is zero.
bool all_zero(const onnx::TensorProto& t) {
  if (t.has_raw_data()) {
    const std::string& raw = t.raw_data();
    return std::all_of(raw.begin(), raw.end(), [](char c) { return c == 0; });
  }
  return std::all_of(t.int32_data().begin(), t.int32_data().end(),
                     [](int32_t v) { return v == 0; });
}

bool nhwc_conv(const Graph& g, const Node& n) {
  if (n.op_type != "QLinearConv" || !n.domain.empty() || n.inputs.size() < 8 ||
      n.inputs.size() > 9 || n.outputs.size() != 1 || n.inputs[0].empty())
    return false;
  const onnx::TensorProto* w = constant(g, n.inputs[3]);
  if (!w || w->data_type() != onnx::TensorProto::INT8 || w->dims_size() != 4) return false;
  for (size_t i : {1, 4, 6})
    if (!constant(g, n.inputs[i])) return false;
  // Zero points absent or constant; oneDNN has none for the weights.
  for (size_t i : {2, 5, 7})
    if (!n.inputs[i].empty() && !constant(g, n.inputs[i])) return false;
  if (!n.inputs[5].empty() && !all_zero(*constant(g, n.inputs[5]))) return false;
  if (n.inputs.size() == 9 && !n.inputs[8].empty() && !constant(g, n.inputs[8])) return false;
  for (const char* name : {"kernel_shape", "strides", "dilations"}) {
    const Attribute* a = n.find_attr(name);
    if (a && a->proto->ints_size() != 2) return false;
  }
  return true;
}

// A 2-D MaxPool with one output, which NhwcMaxPool runs on a channels-last input.
bool nhwc_max_pool(const Node& n) {
  const Attribute* kernel = n.find_attr("kernel_shape");
  return n.op_type == "MaxPool" && n.domain.empty() && n.inputs.size() == 1 &&
         (n.outputs.size() == 1 || (n.outputs.size() == 2 && n.outputs[1].empty())) && kernel &&
         kernel->proto->ints_size() == 2;
}

bool is_qlinear_add(const Node& n) {
  return n.op_type == "QLinearAdd" && n.domain == names::kDomain && n.inputs.size() == 8 &&
         n.outputs.size() == 1;
}

Node transpose(const std::string& name, const std::string& in, const std::string& out,
               const std::vector<int64_t>& perm) {
  Node t;
  t.name = name;
  t.op_type = "Transpose";
  t.inputs = {in};
  t.outputs = {out};
  t.attributes.push_back(ints_attribute("perm", perm));
  return t;
}

}  // namespace

int convert_int8_to_nhwc(Model& model, const std::function<bool(size_t node)>& runs_nhwc) {
  Graph& g = model.graph;
  std::set<std::string> nhwc;  // values held channels-last, by their original names
  std::set<const Node*> converted;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = *g.nodes[i];
    if (!runs_nhwc(i)) continue;
    const bool add = is_qlinear_add(n) && nhwc.count(n.inputs[0]) && nhwc.count(n.inputs[3]);
    const bool pool = nhwc_max_pool(n) && nhwc.count(n.inputs[0]);
    if (!add && !pool && !nhwc_conv(g, n)) continue;
    converted.insert(&n);
    nhwc.insert(n.outputs[0]);
  }
  if (converted.empty()) return 0;

  NameSource names(g);
  std::map<std::string, std::string> renamed;
  for (const std::string& value : nhwc) renamed[value] = names.fresh(value + kSuffix);
  std::map<std::string, bool> read_plain;
  for (const std::string& value : nhwc) read_plain[value] = read_outside(g, value, converted);

  std::map<std::string, std::string> transposed_inputs;
  std::vector<std::unique_ptr<Node>> nodes;
  for (auto& owned : g.nodes) {
    Node& n = *owned;
    if (!converted.count(&n)) {
      nodes.push_back(std::move(owned));
      continue;
    }
    const bool conv = n.op_type == "QLinearConv";
    for (size_t k : is_qlinear_add(n) ? std::vector<size_t>{0, 3} : std::vector<size_t>{0}) {
      std::string& in = n.inputs[k];
      if (renamed.count(in)) {
        in = renamed.at(in);
        continue;
      }
      auto [it, added] = transposed_inputs.emplace(in, "");
      if (added) {
        it->second = names.fresh(in + kSuffix);
        nodes.push_back(std::make_unique<Node>(
            transpose(names.fresh(in + "_to_nhwc"), in, it->second, {0, 2, 3, 1})));
      }
      in = it->second;
    }
    if (conv || n.op_type == "MaxPool") {
      n.op_type = conv ? "NhwcQLinearConv" : "NhwcMaxPool";
      n.domain = names::kDomain;
      n.outputs.resize(1);
    }
    const std::string out = n.outputs[0];
    n.outputs[0] = renamed.at(out);
    nodes.push_back(std::move(owned));
    // The value's shape and type now describe the channels-first tensor only.
    if (!read_plain.at(out)) {
      g.value_info.erase(out);
      continue;
    }
    nodes.push_back(std::make_unique<Node>(
        transpose(names.fresh(out + "_from_nhwc"), renamed.at(out), out, {0, 3, 1, 2})));
  }
  g.nodes = std::move(nodes);
  g.renumber();
  if (!model.opset_imports.count(names::kDomain)) model.opset_imports[names::kDomain] = 1;
  return static_cast<int>(converted.size());
}

}  // namespace graft::ir
