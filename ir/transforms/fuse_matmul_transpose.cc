// Folds a Transpose that swaps the last two axes into the MatMul reading it: the MatMul becomes
// com.graft.FusedMatMul with transA / transB, whose GEMM reads the operand transposed in place.
// Chains of Transposes (a backward graph transposes a weight its forward already transposed)
// are first composed into one, or removed when they cancel. Then a bias Add after a MatMul
// (linear layers exported as MatMul + Add) becomes FusedMatMul's input C, which the GEMM
// accumulates onto instead of a second pass over the product, and the Relu, Gelu (erf form),
// Tanh or Sigmoid after it becomes FusedMatMul's `activation`, applied as the product is written.
#include <algorithm>

#include "ir/names.h"
#include "ir/transforms/optimize.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {
namespace {

// The Transpose feeding `value` when it only swaps the last two axes and nothing else reads
// its output; nullptr otherwise.
const Node* swap_last_two(const Graph& g, const std::string& value) {
  const Node* t = g.producer(value);
  if (!t || t->op_type != "Transpose" || !t->domain.empty() || g.consumers(value).size() != 1)
    return nullptr;
  if (g.is_graph_output(value)) return nullptr;
  const Attribute* perm = t->find_attr("perm");
  if (!perm) return nullptr;
  const auto& p = perm->proto->ints();
  const int rank = p.size();
  if (rank < 2 || p[rank - 1] != rank - 2 || p[rank - 2] != rank - 1) return nullptr;
  for (int i = 0; i < rank - 2; ++i) {
    if (p[i] != i) return nullptr;
  }
  return t;
}

// transpose(Gemm(a, b)) for a 2-D perm [1, 0] and a Gemm without C read only by the Transpose:
// (op(a) op(b))^T = op(b)^T op(a)^T, so the Gemm takes its inputs swapped with the flags
// flipped and writes the Transpose's output itself.
bool fold_into_gemm(Graph& graph, Node& transpose, Node& gemm) {
  if (gemm.op_type != "Gemm" || !gemm.domain.empty() || gemm.inputs.size() != 2 ||
      gemm.outputs.size() != 1 || graph.consumers(gemm.outputs[0]).size() != 1 ||
      graph.is_graph_output(gemm.outputs[0]))
    return false;
  const Attribute* perm = transpose.find_attr("perm");
  if (!perm || perm->proto->ints_size() != 2 || perm->proto->ints(0) != 1) return false;
  int64_t trans_a = 0, trans_b = 0;
  for (const auto& a : gemm.attributes) {
    if (a.name == "transA") trans_a = a.proto->i();
    if (a.name == "transB") trans_b = a.proto->i();
  }
  std::swap(gemm.inputs[0], gemm.inputs[1]);
  std::vector<Attribute> kept;
  for (auto& a : gemm.attributes) {
    if (a.name != "transA" && a.name != "transB") kept.push_back(a);
  }
  kept.push_back(int_attribute("transA", 1 - trans_b));
  kept.push_back(int_attribute("transB", 1 - trans_a));
  gemm.attributes = std::move(kept);
  graph.value_info.erase(gemm.outputs[0]);
  gemm.outputs[0] = transpose.outputs[0];
  graph.remove_node(&transpose);
  return true;
}

}  // namespace

int fold_transposes(Graph& graph) {
  int folded = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& outer = *graph.nodes[i];
    if (outer.op_type != "Transpose" || !outer.domain.empty() || outer.inputs.size() != 1) continue;
    Node* inner = graph.producer(outer.inputs[0]);
    if (inner && fold_into_gemm(graph, outer, *inner)) {
      i = 0;
      ++folded;
      continue;
    }
    if (!inner || inner->op_type != "Transpose" || !inner->domain.empty()) continue;
    const Attribute* p_inner = inner->find_attr("perm");
    Attribute* p_outer = nullptr;
    for (auto& a : outer.attributes) {
      if (a.name == "perm") p_outer = &a;
    }
    if (!p_inner || !p_outer || p_inner->proto->ints_size() != p_outer->proto->ints_size())
      continue;
    // y = transpose(transpose(x, p), q) reads x through perm p[q[j]].
    const auto& p = p_inner->proto->ints();
    const auto& q = p_outer->proto->ints();
    std::vector<int64_t> composed;
    bool identity = true;
    for (int j = 0; j < q.size(); ++j) {
      if (q[j] < 0 || q[j] >= p.size()) return folded;
      composed.push_back(p[static_cast<int>(q[j])]);
      identity = identity && composed.back() == j;
    }
    const std::string source = inner->inputs[0];
    if (identity && !graph.is_graph_output(outer.outputs[0])) {
      const std::string out = outer.outputs[0];
      graph.remove_node(&outer);
      graph.replace_uses(out, source);
      graph.value_info.erase(out);
      i = 0;
    } else {
      outer.inputs[0] = source;
      p_outer->proto->clear_ints();
      for (int64_t v : composed) p_outer->proto->add_ints(v);
    }
    ++folded;
  }
  // Transposes nothing reads any more.
  for (size_t i = 0; i < graph.nodes.size();) {
    const Node& n = *graph.nodes[i];
    const bool dead = n.op_type == "Transpose" && n.domain.empty() &&
                      graph.consumers(n.outputs[0]).empty() && !graph.is_graph_output(n.outputs[0]);
    if (!dead) {
      ++i;
      continue;
    }
    graph.value_info.erase(n.outputs[0]);
    graph.remove_node(&n);
  }
  return folded;
}

namespace {

// The static rank of `value`, or -1 when its type does not say.
int static_rank(const Graph& g, const std::string& value) {
  if (const onnx::TensorProto* t = g.find_initializer(value)) return t->dims_size();
  const onnx::TypeProto* t = g.type_of(value);
  if (!t || !t->has_tensor_type() || !t->tensor_type().has_shape()) return -1;
  return t->tensor_type().shape().dim_size();
}

// MatMul / FusedMatMul -> Add(product, bias) with a 1-D bias and a B of rank 2 or more (a weight
// initializer's, or transposed): the Add's output becomes the product's, with the bias as input
// C. A's rank does not matter, so a model whose intermediate types are not recorded fuses too:
// the product's last axis is B's columns whatever A is (a 1-D A is promoted and dropped).
int fuse_bias(Graph& graph) {
  int fused = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& mm = *graph.nodes[i];
    const bool matmul = mm.op_type == "MatMul" && mm.domain.empty();
    const bool fused_mm = mm.op_type == "FusedMatMul" && mm.domain == names::kDomain;
    if ((!matmul && !fused_mm) || mm.inputs.size() != 2 || mm.outputs.size() != 1) continue;
    const std::string product = mm.outputs[0];
    const auto readers = graph.consumers(product);
    if (readers.size() != 1 || graph.is_graph_output(product)) continue;
    Node& add = *readers[0];
    if (add.op_type != "Add" || !add.domain.empty() || add.inputs.size() != 2 ||
        add.inputs[0] == add.inputs[1])
      continue;
    const std::string bias = add.inputs[0] == product ? add.inputs[1] : add.inputs[0];
    const Attribute* trans_b = mm.find_attr("transB");
    const bool b_matrix =
        static_rank(graph, mm.inputs[1]) >= 2 || (trans_b && trans_b->proto->i() != 0);
    if (static_rank(graph, bias) != 1 || !b_matrix) continue;
    if (matmul) {
      mm.op_type = "FusedMatMul";
      mm.domain = names::kDomain;
      mm.attributes = {int_attribute("transA", 0), int_attribute("transB", 0)};
    }
    mm.inputs.push_back(bias);
    mm.outputs[0] = add.outputs[0];
    graph.value_info.erase(product);
    graph.remove_node(&add);
    ++fused;
  }
  return fused;
}

// The `activation` FusedMatMul names for `n`, or nullptr when it computes none of them.
const char* activation_of(const Node& n) {
  if (n.inputs.size() != 1 || n.outputs.size() != 1) return nullptr;
  if (n.domain.empty()) {
    for (const char* op : {"Relu", "Tanh", "Sigmoid"}) {
      if (n.op_type == op) return op;
    }
  }
  // ai.onnx Gelu from opset 20, com.graft.Gelu before: the erf form only.
  if (n.op_type == "Gelu" && (n.domain.empty() || n.domain == names::kDomain)) {
    const Attribute* approximate = n.find_attr("approximate");
    if (!approximate || approximate->proto->s() == "none") return "Gelu";
  }
  return nullptr;
}

// FusedMatMul (after fuse_bias) -> an activation that alone reads the product: the activation's
// output becomes the FusedMatMul's.
int fuse_activation(Graph& graph) {
  int fused = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& mm = *graph.nodes[i];
    if (mm.op_type != "FusedMatMul" || mm.domain != names::kDomain || mm.outputs.size() != 1 ||
        mm.find_attr("activation"))
      continue;
    const std::string product = mm.outputs[0];
    const auto readers = graph.consumers(product);
    if (readers.size() != 1 || graph.is_graph_output(product)) continue;
    const Node& act = *readers[0];
    const char* activation = activation_of(act);
    if (!activation || act.inputs[0] != product) continue;
    mm.attributes.push_back(string_attribute("activation", activation));
    mm.outputs[0] = act.outputs[0];
    graph.value_info.erase(product);
    graph.remove_node(&act);
    ++fused;
  }
  return fused;
}

}  // namespace

int fuse_matmul_transpose(Graph& graph) {
  int fused = fold_transposes(graph);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& mm = *graph.nodes[i];
    if (mm.op_type != "MatMul" || !mm.domain.empty() || mm.inputs.size() != 2) continue;
    const Node* ta = swap_last_two(graph, mm.inputs[0]);
    const Node* tb = swap_last_two(graph, mm.inputs[1]);
    if (!ta && !tb) continue;
    // A transposed operand has rank 2 or more (its perm says so); the other may be anything
    // MatMul takes.
    const std::string a = ta ? ta->inputs[0] : mm.inputs[0];
    const std::string b = tb ? tb->inputs[0] : mm.inputs[1];
    std::vector<const Node*> dead;
    if (ta) dead.push_back(ta);
    if (tb) dead.push_back(tb);
    mm.op_type = "FusedMatMul";
    mm.domain = names::kDomain;
    mm.inputs = {a, b};
    mm.attributes = {int_attribute("transA", ta != nullptr),
                     int_attribute("transB", tb != nullptr)};
    for (const Node* t : dead) {
      graph.value_info.erase(t->outputs[0]);
      graph.remove_node(t);
    }
    i = 0;  // indices moved; the pass is cheap
    ++fused;
  }
  fused += fuse_bias(graph);
  return fused + fuse_activation(graph);
}

}  // namespace graft::ir
