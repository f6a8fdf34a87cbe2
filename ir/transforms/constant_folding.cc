// Constant folding: Constant nodes, Shape and Size of static shapes, and deterministic ai.onnx
// nodes whose inputs are all constant become initializers. The values are computed by the
// evaluator the caller supplies (the session's CPU kernels), so ir runs no kernels itself.
#include <algorithm>
#include <set>
#include <unordered_map>

#include "ir/constants.h"
#include "ir/transforms/optimize.h"
#include "ir/transforms/value_types.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {
namespace {

constexpr int64_t kMinCap = int64_t{1} << 20;  // outputs up to 1 MiB always fold

// Ops whose result is not a function of their inputs, or that must stay for other reasons:
// quantize/dequantize pairs are how quantized weights are recognised by later passes.
const std::set<std::string> kNeverFolded = {"RandomNormal",     "RandomNormalLike",
                                            "RandomUniform",    "RandomUniformLike",
                                            "Multinomial",      "Bernoulli",
                                            "Dropout",          "QuantizeLinear",
                                            "DequantizeLinear", "DynamicQuantizeLinear"};

// Ops that may produce far more data than they read: folded only when the output's size is known
// before computing it.
const std::set<std::string> kExpanding = {"ConstantOfShape", "Expand", "Tile",   "Range",  "Resize",
                                          "Upsample",        "Pad",    "OneHot", "EyeLike"};

int64_t element_bytes(int32_t dtype) {
  switch (dtype) {
    case onnx::TensorProto::DOUBLE:
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::UINT64:
    case onnx::TensorProto::COMPLEX64:
      return 8;
    case onnx::TensorProto::FLOAT:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::UINT32:
      return 4;
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::BFLOAT16:
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::UINT16:
      return 2;
    case onnx::TensorProto::STRING:
    case onnx::TensorProto::COMPLEX128:
      return 16;
    default:
      return 1;
  }
}

int64_t tensor_bytes(const onnx::TensorProto& t) {
  int64_t n = element_bytes(t.data_type());
  for (int64_t d : t.dims()) n *= d;
  return n;
}

std::shared_ptr<onnx::TensorProto> int64_tensor(const std::vector<int64_t>& values, bool scalar) {
  auto t = std::make_shared<onnx::TensorProto>();
  t->set_data_type(onnx::TensorProto::INT64);
  if (!scalar) t->add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) t->add_int64_data(v);
  return t;
}

// The tensor a Constant node holds, or nullptr for a form folded by the evaluator (sparse).
std::shared_ptr<onnx::TensorProto> constant_value(const Node& n) {
  if (n.attributes.size() != 1) return nullptr;
  const onnx::AttributeProto& a = *n.attributes[0].proto;
  auto t = std::make_shared<onnx::TensorProto>();
  if (a.name() == "value") {
    *t = a.t();
  } else if (a.name() == "value_float" || a.name() == "value_floats") {
    t->set_data_type(onnx::TensorProto::FLOAT);
    if (a.name() == "value_float") {
      t->add_float_data(a.f());
    } else {
      t->add_dims(a.floats_size());
      for (float f : a.floats()) t->add_float_data(f);
    }
  } else if (a.name() == "value_int") {
    return int64_tensor({a.i()}, true);
  } else if (a.name() == "value_ints") {
    return int64_tensor(std::vector<int64_t>(a.ints().begin(), a.ints().end()), false);
  } else if (a.name() == "value_string" || a.name() == "value_strings") {
    t->set_data_type(onnx::TensorProto::STRING);
    if (a.name() == "value_string") {
      t->add_string_data(a.s());
    } else {
      t->add_dims(a.strings_size());
      for (const auto& s : a.strings()) t->add_string_data(s);
    }
  } else {
    return nullptr;
  }
  return t;
}

// Whether ONNX's shape inference may give `n` an output shape its kernels do not produce. For
// pooling with ceil_mode, onnx 1.23 infers ceil((in + pads - window) / stride) + 1 windows, where
// the operator (onnx.reference, onnxruntime, graft) drops a last window that starts in the right
// padding: AveragePool over [1, 2, 7, 6] with kernel [3, 2], strides [2, 3], pads [1, 0, 0, 1] is
// inferred [1, 2, 4, 3] and computes [1, 2, 4, 2].
bool inference_may_differ(const Node& n) {
  static const std::set<std::string> pools = {"AveragePool", "MaxPool", "LpPool"};
  if (!pools.count(n.op_type)) return false;
  return std::any_of(n.attributes.begin(), n.attributes.end(),
                     [](const Attribute& a) { return a.name == "ceil_mode" && a.proto->i() != 0; });
}

// Values whose inferred shape may not be the one computed: the outputs of a node whose inference
// may differ (inference_may_differ) and everything computed from them. Shape and Size of these
// are left to run time.
std::set<std::string> untrusted_shapes(const Graph& g) {
  std::set<std::string> untrusted;
  for (const auto& n : g.nodes) {
    const bool derived = std::any_of(n->inputs.begin(), n->inputs.end(),
                                     [&](const std::string& v) { return untrusted.count(v) > 0; });
    if (derived || inference_may_differ(*n)) untrusted.insert(n->outputs.begin(), n->outputs.end());
  }
  return untrusted;
}

// Shape (start/end attributes of opset 15 included) or Size of a statically shaped input.
std::shared_ptr<onnx::TensorProto> shape_value(const Graph& g, const Node& n,
                                               const std::set<std::string>& untrusted) {
  if (n.inputs.empty() || untrusted.count(n.inputs[0])) return nullptr;
  const auto dims = static_dims(g, n.inputs[0]);
  if (!dims) return nullptr;
  if (n.op_type == "Size") {
    int64_t size = 1;
    for (int64_t d : *dims) size *= d;
    return int64_tensor({size}, true);
  }
  const auto rank = static_cast<int64_t>(dims->size());
  auto clamp = [&](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
  int64_t start = 0, end = rank;
  for (const auto& a : n.attributes) {
    if (a.name == "start") start = clamp(a.proto->i());
    if (a.name == "end") end = clamp(a.proto->i());
  }
  return int64_tensor(
      std::vector<int64_t>(dims->begin() + start, dims->begin() + std::max(start, end)), false);
}

bool has_nested_graph(const Node& n) {
  return std::any_of(n.attributes.begin(), n.attributes.end(),
                     [](const Attribute& a) { return !a.graphs.empty(); });
}

}  // namespace

int fold_constants(Graph& graph, const ConstantEvaluator& evaluate) {
  // Constants: initializers the caller cannot override, by name.
  std::unordered_map<std::string, const onnx::TensorProto*> constants;
  for (const auto& t : graph.initializers) {
    if (!graph.is_graph_input(t->name())) constants[t->name()] = t.get();
  }
  const std::set<std::string> untrusted = untrusted_shapes(graph);
  int folded = 0;
  for (size_t i = 0; i < graph.nodes.size();) {
    const Node& n = *graph.nodes[i];
    const bool produces_output = std::any_of(n.outputs.begin(), n.outputs.end(),
                                             [&](auto& o) { return graph.is_graph_output(o); });
    std::vector<std::shared_ptr<onnx::TensorProto>> values;
    if (!n.domain.empty() || produces_output || n.outputs.empty() || has_nested_graph(n) ||
        kNeverFolded.count(n.op_type)) {
      // not foldable
    } else if (n.op_type == "Constant") {
      if (auto t = constant_value(n)) values.push_back(std::move(t));
    } else if (n.op_type == "Shape" || n.op_type == "Size") {
      if (auto t = shape_value(graph, n, untrusted)) values.push_back(std::move(t));
    } else if (evaluate && !n.inputs.empty()) {
      std::vector<const onnx::TensorProto*> inputs;
      int64_t largest = 0;
      bool all_constant = true;
      for (const auto& name : n.inputs) {
        auto it = name.empty() ? constants.end() : constants.find(name);
        all_constant = all_constant && (name.empty() || it != constants.end());
        inputs.push_back(it == constants.end() ? nullptr : it->second);
        if (it != constants.end()) largest = std::max(largest, tensor_bytes(*it->second));
      }
      const int64_t cap = std::max(largest, kMinCap);
      // An op that can expand its input folds only when its output's size is known to fit.
      bool fits = !kExpanding.count(n.op_type);
      if (n.op_type == "ConstantOfShape" && inputs[0]) {
        // A count or size past int64 does not fit either.
        int64_t count = 1;
        bool overflow = false;
        for (int64_t d : tensor_ints(*inputs[0]).value_or(std::vector<int64_t>{})) {
          overflow = overflow || __builtin_mul_overflow(count, d, &count);
        }
        fits = !overflow && count <= cap / 8;
      }
      for (const auto& o : n.outputs) {
        auto dims = static_dims(graph, o);
        if (!dims) continue;
        int64_t bytes = element_bytes(elem_type(graph, o));
        bool overflow = false;
        for (int64_t d : *dims) overflow = overflow || __builtin_mul_overflow(bytes, d, &bytes);
        fits = !overflow && bytes <= cap;
        if (!fits) break;
      }
      if (all_constant && fits) values = evaluate(n, inputs);
      const bool too_large = std::any_of(values.begin(), values.end(),
                                         [&](const auto& t) { return tensor_bytes(*t) > cap; });
      size_t written = 0;
      for (const auto& o : n.outputs) written += o.empty() ? 0 : 1;
      if (too_large || values.size() != written) values.clear();
    }
    if (values.empty()) {
      ++i;
      continue;
    }
    size_t k = 0;
    for (const auto& o : n.outputs) {
      if (o.empty()) continue;
      values[k]->set_name(o);
      constants[o] = values[k].get();
      graph.initializers.push_back(std::move(values[k++]));
      graph.value_info.erase(o);
    }
    graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(i));
    ++folded;
  }
  return folded;
}

}  // namespace graft::ir
