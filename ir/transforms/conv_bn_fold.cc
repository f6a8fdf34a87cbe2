// Conv followed by an inference BatchNormalization becomes one Conv with rescaled weights:
//   W' = W * s,  B' = (B - mean) * s + beta,  s = gamma / sqrt(var + epsilon)  (per channel).
#include <cmath>

#include "ir/transforms/optimize.h"
#include "onnx/defs/tensor_proto_util.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {
namespace {

const onnx::TensorProto* float_initializer(const Graph& g, const std::string& name) {
  if (name.empty()) return nullptr;
  const onnx::TensorProto* t = g.find_initializer(name);
  if (!t || t->data_type() != onnx::TensorProto::FLOAT || g.is_graph_input(name)) return nullptr;
  return t;
}

std::shared_ptr<onnx::TensorProto> make_float(const std::string& name,
                                              const std::vector<int64_t>& dims,
                                              const std::vector<float>& data) {
  auto t = std::make_shared<onnx::TensorProto>();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(
      std::string(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float)));
  return t;
}

std::string unique_name(const Graph& g, const std::string& base) {
  std::string name = base;
  for (int k = 1; g.find_initializer(name) || g.producer(name); ++k)
    name = base + "_" + std::to_string(k);
  return name;
}

bool try_fold(Graph& g, size_t conv_index) {
  Node& conv = *g.nodes[conv_index];
  if (conv.op_type != "Conv" || !conv.domain.empty() || conv.inputs.size() < 2 ||
      conv.outputs.size() != 1)
    return false;
  auto readers = g.consumers(conv.outputs[0]);
  if (readers.size() != 1) return false;
  for (const auto& o : g.outputs) {
    if (o.name == conv.outputs[0]) return false;
  }
  Node& bn = *readers[0];
  if (bn.op_type != "BatchNormalization" || !bn.domain.empty() || bn.inputs.size() != 5 ||
      bn.inputs[0] != conv.outputs[0]) {
    return false;
  }
  for (size_t k = 1; k < bn.outputs.size(); ++k) {
    if (!bn.outputs[k].empty()) return false;  // training-mode statistics are read
  }
  if (const Attribute* tm = bn.find_attr("training_mode"); tm && tm->proto->i() != 0) return false;
  const onnx::TensorProto* w = float_initializer(g, conv.inputs[1]);
  const onnx::TensorProto* b =
      conv.inputs.size() > 2 ? float_initializer(g, conv.inputs[2]) : nullptr;
  if (conv.inputs.size() > 2 && !conv.inputs[2].empty() && !b) return false;
  const onnx::TensorProto* gamma = float_initializer(g, bn.inputs[1]);
  const onnx::TensorProto* beta = float_initializer(g, bn.inputs[2]);
  const onnx::TensorProto* mean = float_initializer(g, bn.inputs[3]);
  const onnx::TensorProto* var = float_initializer(g, bn.inputs[4]);
  if (!w || !gamma || !beta || !mean || !var || w->dims_size() < 3) return false;
  const int64_t channels = w->dims(0);
  std::vector<float> wd = onnx::ParseData<float>(w);
  std::vector<float> gd = onnx::ParseData<float>(gamma), bd = onnx::ParseData<float>(beta);
  std::vector<float> md = onnx::ParseData<float>(mean), vd = onnx::ParseData<float>(var);
  std::vector<float> cb =
      b ? onnx::ParseData<float>(b) : std::vector<float>(static_cast<size_t>(channels), 0.0f);
  auto c = static_cast<size_t>(channels);
  if (gd.size() != c || bd.size() != c || md.size() != c || vd.size() != c || cb.size() != c ||
      wd.size() % c)
    return false;
  float eps = 1e-5f;
  if (const Attribute* e = bn.find_attr("epsilon")) eps = e->proto->f();
  const size_t per_channel = wd.size() / c;
  std::vector<float> new_b(c);
  for (size_t k = 0; k < c; ++k) {
    float s = gd[k] / std::sqrt(vd[k] + eps);
    for (size_t j = 0; j < per_channel; ++j) wd[k * per_channel + j] *= s;
    new_b[k] = (cb[k] - md[k]) * s + bd[k];
  }
  std::vector<int64_t> wdims(w->dims().begin(), w->dims().end());
  std::string w_name = unique_name(g, conv.inputs[1] + "_bn"),
              b_name = unique_name(g, bn.outputs[0] + "_bias");
  g.initializers.push_back(make_float(w_name, wdims, wd));
  g.initializers.push_back(make_float(b_name, {channels}, new_b));
  conv.inputs.resize(3);
  conv.inputs[1] = w_name;
  conv.inputs[2] = b_name;
  std::string old_out = conv.outputs[0];
  conv.outputs[0] = bn.outputs[0];
  g.value_info.erase(old_out);
  g.remove_node(&bn);
  return true;
}

// Drops initializers nothing reads any more (the unfolded weights).
void drop_unused_initializers(Graph& g) {
  std::vector<std::shared_ptr<onnx::TensorProto>> kept;
  for (auto& t : g.initializers) {
    if (g.is_graph_input(t->name()) || !g.consumers(t->name()).empty()) {
      kept.push_back(t);
      continue;
    }
    if (g.is_graph_output(t->name())) kept.push_back(t);
  }
  g.initializers = std::move(kept);
}

}  // namespace

int fold_conv_batchnorm(Graph& graph) {
  int folded = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) folded += try_fold(graph, i) ? 1 : 0;
  if (folded) drop_unused_initializers(graph);
  return folded;
}

}  // namespace graft::ir
