// Runs a QDQ model's quantized operators in integers, as onnxruntime's QDQ selectors do:
//   DequantizeLinear(x_q), DequantizeLinear(w_q const)[, DequantizeLinear(b_q const)]
//     -> Conv [-> Relu] -> QuantizeLinear        becomes QLinearConv(x_q, w_q, b_q) -> y_q
//   DequantizeLinear(a_q), DequantizeLinear(b_q const) -> MatMul -> QuantizeLinear
//                                                becomes QLinearMatMul(a_q, b_q) -> y_q
//   DequantizeLinear(x_q) -> MaxPool -> QuantizeLinear of the same scale and zero point
//                                                becomes MaxPool(x_q) -> y_q
//   DequantizeLinear(a_q), DequantizeLinear(b_q) -> Add [-> Relu] -> QuantizeLinear
//                                  becomes com.graft.QLinearAdd(a_q, b_q) -> y_q (ResNet's sums)
//   MatMulInteger(a_q, b_q const) -> Cast -> Mul(a_scale * b_scale) [-> Add(bias)]
//                                  becomes com.graft.MatMulIntegerToFloat (quantize_dynamic's)
//   DequantizeLinear(a_q), DequantizeLinear(b_q const)[, DequantizeLinear(c_q const)] -> Gemm
//                                  becomes com.graft.MatMulIntegerToFloat (a classifier's head)
// Scales and zero points are constants: x and y per tensor, the weights per tensor or per output
// channel, with zero zero points where the integer op requires them. A DequantizeLinear that
// other nodes still read stays for them; one nothing reads any more is removed. The pass runs
// before constant folding, which would turn the weights' DequantizeLinear into float weights.
#include <algorithm>
#include <cmath>
#include <optional>

#include "ir/names.h"
#include "ir/transforms/optimize.h"
#include "onnx/defs/tensor_proto_util.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {
namespace {

bool is_8bit(int32_t type) {
  return type == onnx::TensorProto::UINT8 || type == onnx::TensorProto::INT8;
}

int64_t int_attr(const Node& n, const std::string& name, int64_t fallback) {
  const Attribute* a = n.find_attr(name);
  return a ? a->proto->i() : fallback;
}

// The elements of an initializer as doubles (float scales, 8- and 32-bit integers); nullopt for
// other types.
std::optional<std::vector<double>> values(const onnx::TensorProto& t) {
  std::vector<double> out;
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      for (float v : onnx::ParseData<float>(&t)) out.push_back(v);
      return out;
    case onnx::TensorProto::INT32:
      for (int32_t v : onnx::ParseData<int32_t>(&t)) out.push_back(v);
      return out;
    case onnx::TensorProto::UINT8:
      if (!t.has_raw_data()) break;
      for (uint8_t v : onnx::ParseRawData<uint8_t>(t)) out.push_back(v);
      return out;
    case onnx::TensorProto::INT8:
      if (!t.has_raw_data()) break;
      for (int8_t v : onnx::ParseRawData<int8_t>(t)) out.push_back(v);
      return out;
    default:
      return std::nullopt;
  }
  // 8-bit values stored unpacked, one per int32.
  for (int32_t v : t.int32_data()) out.push_back(v);
  return out;
}

// The initializer `value` names when the caller cannot override it with an input.
const onnx::TensorProto* constant(const Graph& g, const std::string& value) {
  return g.is_graph_input(value) ? nullptr : g.find_initializer(value);
}

// A DequantizeLinear whose scale and zero point are constants.
struct Dequantize {
  Node* node = nullptr;
  std::string quantized, scale, zero;  // its inputs; `zero` may be empty
  int32_t type = 0;                    // the quantized element type
  std::vector<double> scales, zeros;   // zeros is empty when the zero point is absent
  int64_t axis = 1;
};

// The DequantizeLinear producing `value`, when its scale is a float initializer and its zero
// point an initializer (or absent), without blocks.
std::optional<Dequantize> dequantize_of(const Graph& g, const std::string& value) {
  Node* n = g.producer(value);
  // Exporters share a bias between convolutions through Identity nodes (removed by level 1,
  // which runs after this pass).
  while (n && n->op_type == "Identity" && n->domain.empty() && n->inputs.size() == 1)
    n = g.producer(n->inputs[0]);
  if (!n || n->op_type != "DequantizeLinear" || !n->domain.empty() || n->inputs.size() < 2)
    return std::nullopt;
  if (int_attr(*n, "block_size", 0) != 0) return std::nullopt;
  Dequantize d;
  d.node = n;
  d.quantized = n->inputs[0];
  d.scale = n->inputs[1];
  d.zero = n->inputs.size() > 2 ? n->inputs[2] : "";
  d.axis = int_attr(*n, "axis", 1);
  const onnx::TensorProto* scale = constant(g, d.scale);
  if (!scale || scale->data_type() != onnx::TensorProto::FLOAT) return std::nullopt;
  d.scales = *values(*scale);
  if (!d.zero.empty()) {
    const onnx::TensorProto* zero = constant(g, d.zero);
    if (!zero) return std::nullopt;
    auto z = values(*zero);
    if (!z || z->size() != d.scales.size()) return std::nullopt;
    d.zeros = *z;
    d.type = zero->data_type();
  } else if (const onnx::TensorProto* q = constant(g, d.quantized)) {
    d.type = q->data_type();
  }
  return d;
}

// The only reader of `value` when it has one and is no graph output.
Node* only_reader(const Graph& g, const std::string& value) {
  const auto readers = g.consumers(value);
  if (readers.size() != 1 || g.is_graph_output(value)) return nullptr;
  return readers[0];
}

// A QuantizeLinear of `value` to 8 bits with one constant scale and zero point.
struct Quantize {
  Node* node = nullptr;
  double scale = 0, zero = 0;
  int32_t type = 0;
};

std::optional<Quantize> quantize_of(const Graph& g, const std::string& value) {
  Node* q = only_reader(g, value);
  if (!q || q->op_type != "QuantizeLinear" || !q->domain.empty() || q->inputs.size() != 3 ||
      q->inputs[0] != value || int_attr(*q, "block_size", 0) != 0)
    return std::nullopt;
  const onnx::TensorProto* scale = constant(g, q->inputs[1]);
  const onnx::TensorProto* zero = constant(g, q->inputs[2]);
  if (!scale || !zero || scale->data_type() != onnx::TensorProto::FLOAT ||
      !is_8bit(zero->data_type()))
    return std::nullopt;
  const auto s = values(*scale), z = values(*zero);
  if (s->size() != 1 || !z || z->size() != 1) return std::nullopt;
  const int64_t output_dtype = int_attr(*q, "output_dtype", 0);
  if (output_dtype != 0 && output_dtype != zero->data_type()) return std::nullopt;
  return Quantize{q, (*s)[0], (*z)[0], zero->data_type()};
}

// An activation dequantized per tensor from 8 bits.
bool per_tensor_8bit(const Dequantize& d) {
  return d.scales.size() == 1 && d.zeros.size() == 1 && is_8bit(d.type);
}

// Weights dequantized from an 8-bit initializer per tensor, or per `axis` of `count` entries.
bool constant_weights(const Graph& g, const Dequantize& d, int64_t axis, int64_t count) {
  const onnx::TensorProto* w = constant(g, d.quantized);
  if (!w || !is_8bit(w->data_type()) || d.zeros.size() != d.scales.size()) return false;
  if (d.scales.size() == 1) return true;
  const int64_t rank = w->dims_size();
  const int64_t a = d.axis < 0 ? d.axis + rank : d.axis;
  return a == axis && static_cast<int64_t>(d.scales.size()) == count;
}

// Removes the DequantizeLinear nodes nothing reads any more.
void remove_unread(Graph& g, const std::vector<Node*>& nodes) {
  for (Node* n : nodes) {
    if (!n || !g.consumers(n->outputs[0]).empty() || g.is_graph_output(n->outputs[0])) continue;
    g.value_info.erase(n->outputs[0]);
    g.remove_node(n);
  }
}

// Conv or Add [-> Relu] -> QuantizeLinear: the QuantizeLinear reading the node's result, with
// the Relu that a zero point at the bottom of the range makes redundant.
std::optional<Quantize> quantized_result(const Graph& g, const Node& node, Node*& relu) {
  relu = nullptr;
  Node* next = only_reader(g, node.outputs[0]);
  if (next && next->op_type == "Relu" && next->domain.empty()) {
    auto q = quantize_of(g, next->outputs[0]);
    // Saturation clips what Relu would zero exactly when the zero point is the lowest value.
    const double lowest = q && q->type == onnx::TensorProto::UINT8 ? 0.0 : -128.0;
    if (!q || q->zero != lowest) return std::nullopt;
    relu = next;
    return q;
  }
  return quantize_of(g, node.outputs[0]);
}

// `node` becomes `op_type` (of `domain`) reading `inputs` and writing what `y` wrote; `y` and
// the `relu` before it (if any) go.
void replace_with_quantized(Graph& g, Node& node, const std::string& op_type,
                            const std::string& domain, std::vector<std::string> inputs,
                            const Quantize& y, Node* relu) {
  const std::string result = y.node->outputs[0];
  g.value_info.erase(node.outputs[0]);
  if (relu) {
    g.value_info.erase(relu->outputs[0]);
    g.remove_node(relu);
  }
  g.remove_node(y.node);
  node.op_type = op_type;
  node.domain = domain;
  node.inputs = std::move(inputs);
  node.outputs = {result};
}

// Whether an int32 bias dequantized by `b` is at scale x_scale * w_scale, as QLinearConv reads it.
bool bias_fits(const Dequantize& b, const Dequantize& x, const Dequantize& w, int64_t maps) {
  for (int64_t m = 0; m < maps; ++m) {
    const double expected = x.scales[0] * w.scales[w.scales.size() == 1 ? 0 : m];
    const double scale = b.scales[b.scales.size() == 1 ? 0 : m];
    if (std::abs(scale - expected) > 1e-6 * std::abs(expected)) return false;
  }
  return true;
}

// A bias quantized at another scale (exporters share one bias tensor between convolutions, and
// the quantizer scales it for one of them) requantized to x_scale * w_scale as a new initializer,
// within half a step of the accumulator: far below a step of the result.
std::string requantized_bias(Graph& g, const Node& conv, const Dequantize& b, const Dequantize& x,
                             const Dequantize& w) {
  const std::vector<double> q = *values(*constant(g, b.quantized));
  auto t = std::make_shared<onnx::TensorProto>();
  t->set_name(conv.outputs[0] + "_bias_requantized");
  t->set_data_type(onnx::TensorProto::INT32);
  t->add_dims(static_cast<int64_t>(q.size()));
  for (size_t m = 0; m < q.size(); ++m) {
    const double real = q[m] * b.scales[b.scales.size() == 1 ? 0 : m];
    const double step = x.scales[0] * w.scales[w.scales.size() == 1 ? 0 : m];
    const double v = std::nearbyint(real / step);
    t->add_int32_data(static_cast<int32_t>(std::clamp(v, -2147483648.0, 2147483647.0)));
  }
  g.initializers.push_back(t);
  return t->name();
}

bool fuse_conv(Graph& g, Node& conv) {
  if (conv.inputs.size() < 2 || conv.outputs.size() != 1) return false;
  const auto x = dequantize_of(g, conv.inputs[0]);
  const auto w = dequantize_of(g, conv.inputs[1]);
  if (!x || !w || !per_tensor_8bit(*x)) return false;
  const onnx::TensorProto* wq = constant(g, w->quantized);
  if (!wq || wq->dims_size() < 3 || !constant_weights(g, *w, 0, wq->dims(0))) return false;
  std::optional<Dequantize> b;
  if (conv.inputs.size() > 2 && !conv.inputs[2].empty()) {
    // QLinearConv's bias is int32 at scale x_scale * w_scale with no zero point.
    b = dequantize_of(g, conv.inputs[2]);
    const onnx::TensorProto* bq = b ? constant(g, b->quantized) : nullptr;
    if (!bq || bq->data_type() != onnx::TensorProto::INT32) return false;
    for (double z : b->zeros)
      if (z != 0) return false;
    if (b->scales.size() != 1 && b->scales.size() != static_cast<size_t>(wq->dims(0))) return false;
  }
  Node* relu = nullptr;
  const auto y = quantized_result(g, conv, relu);
  if (!y) return false;
  std::string bias = b ? b->quantized : "";
  if (b && !bias_fits(*b, *x, *w, wq->dims(0))) bias = requantized_bias(g, conv, *b, *x, *w);

  std::vector<std::string> inputs = {x->quantized,       x->scale,          x->zero,
                                     w->quantized,       w->scale,          w->zero,
                                     y->node->inputs[1], y->node->inputs[2]};
  if (b) inputs.push_back(bias);
  replace_with_quantized(g, conv, "QLinearConv", "", std::move(inputs), *y, relu);
  remove_unread(g, {x->node, w->node, b ? b->node : nullptr});
  return true;
}

bool fuse_matmul(Graph& g, Node& mm) {
  if (mm.inputs.size() != 2 || mm.outputs.size() != 1) return false;
  const auto a = dequantize_of(g, mm.inputs[0]);
  const auto b = dequantize_of(g, mm.inputs[1]);
  if (!a || !b || !per_tensor_8bit(*a)) return false;
  const onnx::TensorProto* bq = constant(g, b->quantized);
  if (!bq || bq->dims_size() != 2 || !constant_weights(g, *b, 1, bq->dims(1))) return false;
  const auto y = quantize_of(g, mm.outputs[0]);
  if (!y) return false;
  replace_with_quantized(g, mm, "QLinearMatMul", "",
                         {a->quantized, a->scale, a->zero, b->quantized, b->scale, b->zero,
                          y->node->inputs[1], y->node->inputs[2]},
                         *y, nullptr);
  remove_unread(g, {a->node, b->node});
  return true;
}

// MaxPool commutes with a monotonic requantization to the same scale and zero point.
bool fuse_max_pool(Graph& g, Node& pool) {
  if (pool.inputs.size() != 1 || pool.outputs.size() != 1) return false;
  const auto x = dequantize_of(g, pool.inputs[0]);
  if (!x || !per_tensor_8bit(*x)) return false;
  const auto y = quantize_of(g, pool.outputs[0]);
  if (!y || y->type != x->type || y->scale != x->scales[0] || y->zero != x->zeros[0]) return false;
  const std::string result = y->node->outputs[0];
  g.value_info.erase(pool.outputs[0]);
  g.remove_node(y->node);
  pool.inputs = {x->quantized};
  pool.outputs = {result};
  remove_unread(g, {x->node});
  return true;
}

// Both operands and the result per tensor in one 8-bit type; the kernel broadcasts as Add does.
bool fuse_add(Graph& g, Node& add) {
  if (add.inputs.size() != 2 || add.outputs.size() != 1) return false;
  const auto a = dequantize_of(g, add.inputs[0]);
  const auto b = dequantize_of(g, add.inputs[1]);
  if (!a || !b || !per_tensor_8bit(*a) || !per_tensor_8bit(*b) || a->type != b->type) return false;
  Node* relu = nullptr;
  const auto y = quantized_result(g, add, relu);
  if (!y || y->type != a->type) return false;
  replace_with_quantized(g, add, "QLinearAdd", names::kDomain,
                         {a->quantized, a->scale, a->zero, b->quantized, b->scale, b->zero,
                          y->node->inputs[1], y->node->inputs[2]},
                         *y, relu);
  remove_unread(g, {a->node, b->node == a->node ? nullptr : b->node});
  return true;
}

// An initializer's elements as int8 (values within int8's range).
std::vector<int8_t> int8_values(const onnx::TensorProto& t) {
  const std::vector<double> v = *values(t);
  return std::vector<int8_t>(v.begin(), v.end());
}

std::string add_initializer(Graph& g, const std::string& name, int32_t type,
                            const std::vector<int64_t>& dims) {
  auto t = std::make_shared<onnx::TensorProto>();
  t->set_name(name);
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  g.initializers.push_back(t);
  return name;
}

// Gemm(A, B, C) of alpha 1, beta 1, A not transposed, with B int8 weights quantized per tensor or
// per output column and C absent or a constant of N values (dequantized from int32 or float):
// the product of the 8-bit A and the int8 B, scaled and biased in float. A transposed B gets a
// [K, N] copy; C is dequantized here.
bool fuse_gemm(Graph& g, Node& gemm) {
  if (gemm.inputs.size() < 2 || gemm.inputs.size() > 3 || gemm.outputs.size() != 1) return false;
  const Attribute* alpha = gemm.find_attr("alpha");
  const Attribute* beta = gemm.find_attr("beta");
  if ((alpha && alpha->proto->f() != 1.0f) || (beta && beta->proto->f() != 1.0f) ||
      int_attr(gemm, "transA", 0) != 0)
    return false;
  const bool trans_b = int_attr(gemm, "transB", 0) != 0;
  const auto a = dequantize_of(g, gemm.inputs[0]);
  const auto b = dequantize_of(g, gemm.inputs[1]);
  if (!a || !b || !per_tensor_8bit(*a)) return false;
  const onnx::TensorProto* bq = constant(g, b->quantized);
  if (!bq || bq->data_type() != onnx::TensorProto::INT8 || bq->dims_size() != 2) return false;
  const int64_t k = bq->dims(trans_b ? 1 : 0), n = bq->dims(trans_b ? 0 : 1);
  if (!constant_weights(g, *b, trans_b ? 0 : 1, n)) return false;
  for (double z : b->zeros)
    if (z != 0) return false;
  // C as N floats.
  std::vector<float> bias;
  std::optional<Dequantize> c;
  if (gemm.inputs.size() == 3 && !gemm.inputs[2].empty()) {
    c = dequantize_of(g, gemm.inputs[2]);
    const onnx::TensorProto* ct = c ? constant(g, c->quantized) : constant(g, gemm.inputs[2]);
    if (!ct || ct->dims_size() != 1 || ct->dims(0) != n) return false;
    if (c && (ct->data_type() != onnx::TensorProto::INT32 ||
              (c->scales.size() != 1 && static_cast<int64_t>(c->scales.size()) != n) ||
              (!c->zeros.empty() && c->zeros.size() != c->scales.size())))
      return false;
    if (!c && ct->data_type() != onnx::TensorProto::FLOAT) return false;
    const std::vector<double> v = *values(*ct);
    for (size_t j = 0; j < v.size(); ++j) {
      if (!c) {
        bias.push_back(static_cast<float>(v[j]));
        continue;
      }
      // As DequantizeLinear computes it.
      const size_t s = c->scales.size() == 1 ? 0 : j;
      const float zero = c->zeros.empty() ? 0.0f : static_cast<float>(c->zeros[s]);
      bias.push_back((static_cast<float>(v[j]) - zero) * static_cast<float>(c->scales[s]));
    }
  }
  const std::string base = gemm.outputs[0];
  std::string weights = b->quantized;
  if (trans_b) {
    const std::vector<int8_t> w = int8_values(*bq);
    std::string raw(static_cast<size_t>(k * n), '\0');
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p)
        raw[static_cast<size_t>(p * n + j)] = static_cast<char>(w[static_cast<size_t>(j * k + p)]);
    weights = add_initializer(g, base + "_weights_kn", onnx::TensorProto::INT8, {k, n});
    g.initializers.back()->set_raw_data(raw);
  }
  std::string bias_name;
  if (!bias.empty()) {
    bias_name = add_initializer(g, base + "_bias_float", onnx::TensorProto::FLOAT, {n});
    for (float v : bias) g.initializers.back()->add_float_data(v);
  }
  gemm.op_type = "MatMulIntegerToFloat";
  gemm.domain = names::kDomain;
  gemm.attributes.clear();
  gemm.inputs = {a->quantized, weights, a->scale, b->scale, a->zero, b->zero};
  if (!bias_name.empty()) gemm.inputs.push_back(bias_name);
  remove_unread(g, {a->node, b->node, c ? c->node : nullptr});
  return true;
}

// The constant a Mul multiplies `value` by; empty when it has none or the Mul reads it twice.
std::string other_operand(const Node& mul, const std::string& value) {
  if (mul.inputs.size() != 2 || mul.inputs[0] == mul.inputs[1]) return "";
  return mul.inputs[0] == value ? mul.inputs[1] : mul.inputs[0];
}

// quantize_dynamic's linear layer, MatMulInteger(A, B const) -> Cast(float) -> Mul(a_scale *
// b_scale) [-> Add(bias)], becomes com.graft.MatMulIntegerToFloat(A, B, a_scale, b_scale,
// a_zero_point, b_zero_point[, bias]).
bool fuse_matmul_integer(Graph& g, Node& mm) {
  if (mm.inputs.size() < 2 || mm.outputs.size() != 1) return false;
  const onnx::TensorProto* b = constant(g, mm.inputs[1]);
  if (!b || b->data_type() != onnx::TensorProto::INT8 || b->dims_size() != 2) return false;
  const int64_t n = b->dims(1);
  if (mm.inputs.size() > 3 && !mm.inputs[3].empty()) {
    const onnx::TensorProto* zero = constant(g, mm.inputs[3]);
    const auto z = zero ? values(*zero) : std::nullopt;
    if (!z) return false;
    for (double v : *z)
      if (v != 0) return false;
  }
  Node* cast = only_reader(g, mm.outputs[0]);
  if (!cast || cast->op_type != "Cast" || !cast->domain.empty() ||
      int_attr(*cast, "to", 0) != onnx::TensorProto::FLOAT)
    return false;
  Node* mul = only_reader(g, cast->outputs[0]);
  if (!mul || mul->op_type != "Mul" || !mul->domain.empty()) return false;
  Node* scales = g.producer(other_operand(*mul, cast->outputs[0]));
  if (!scales || scales->op_type != "Mul" || !scales->domain.empty() || scales->inputs.size() != 2)
    return false;
  std::string a_scale, b_scale;
  for (int i = 0; i < 2; ++i) {
    const onnx::TensorProto* s = constant(g, scales->inputs[static_cast<size_t>(i)]);
    if (s && s->data_type() == onnx::TensorProto::FLOAT && b_scale.empty()) {
      const size_t count = values(*s)->size();
      if (count != 1 && !(s->dims_size() == 1 && static_cast<int64_t>(count) == n)) return false;
      b_scale = scales->inputs[static_cast<size_t>(i)];
      a_scale = scales->inputs[static_cast<size_t>(1 - i)];
    }
  }
  if (b_scale.empty()) return false;
  Node* add = only_reader(g, mul->outputs[0]);
  std::string bias;
  if (add && add->op_type == "Add" && add->domain.empty()) {
    bias = other_operand(*add, mul->outputs[0]);
    const onnx::TensorProto* t = bias.empty() ? nullptr : constant(g, bias);
    if (!t || t->data_type() != onnx::TensorProto::FLOAT || t->dims_size() != 1 || t->dims(0) != n)
      bias.clear();
  }
  const std::string result = bias.empty() ? mul->outputs[0] : add->outputs[0];
  std::vector<std::string> inputs = {mm.inputs[0],
                                     mm.inputs[1],
                                     a_scale,
                                     b_scale,
                                     mm.inputs.size() > 2 ? mm.inputs[2] : "",
                                     mm.inputs.size() > 3 ? mm.inputs[3] : ""};
  if (!bias.empty()) inputs.push_back(bias);
  for (const Node* dead : {static_cast<const Node*>(cast), static_cast<const Node*>(mul),
                           bias.empty() ? nullptr : static_cast<const Node*>(add)}) {
    if (!dead) continue;
    if (dead->outputs[0] != result) g.value_info.erase(dead->outputs[0]);
    g.remove_node(dead);
  }
  g.value_info.erase(mm.outputs[0]);
  mm.op_type = "MatMulIntegerToFloat";
  mm.domain = names::kDomain;
  mm.inputs = inputs;
  mm.outputs = {result};
  if (g.consumers(scales->outputs[0]).empty() && !g.is_graph_output(scales->outputs[0])) {
    g.value_info.erase(scales->outputs[0]);
    g.remove_node(scales);
  }
  return true;
}

}  // namespace

int fuse_qdq(Graph& graph) {
  int fused = 0;
  for (size_t i = 0; i < graph.nodes.size();) {
    Node& n = *graph.nodes[i];
    const bool done =
        n.domain.empty() && ((n.op_type == "Conv" && fuse_conv(graph, n)) ||
                             (n.op_type == "MatMul" && fuse_matmul(graph, n)) ||
                             (n.op_type == "MaxPool" && fuse_max_pool(graph, n)) ||
                             (n.op_type == "Add" && fuse_add(graph, n)) ||
                             (n.op_type == "Gemm" && fuse_gemm(graph, n)) ||
                             (n.op_type == "MatMulInteger" && fuse_matmul_integer(graph, n)));
    if (!done) {
      ++i;
      continue;
    }
    // The fused node stays; the nodes removed around it moved the indices.
    ++fused;
    i = static_cast<size_t>(std::find_if(graph.nodes.begin(), graph.nodes.end(),
                                         [&](const auto& p) { return p.get() == &n; }) -
                            graph.nodes.begin()) +
        1;
  }
  return fused;
}

}  // namespace graft::ir
