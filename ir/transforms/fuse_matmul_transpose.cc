// Folds a Transpose that swaps the last two axes into the MatMul reading it: the MatMul becomes
// com.graft.FusedMatMul with transA / transB, whose GEMM reads the operand transposed in place.
#include <algorithm>

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
  if (std::any_of(g.outputs.begin(), g.outputs.end(),
                  [&](const ValueInfo& v) { return v.name == value; }))
    return nullptr;
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

int64_t static_rank(const Graph& g, const std::string& value) {
  const onnx::TypeProto* t = g.type_of(value);
  if (!t || !t->has_tensor_type() || !t->tensor_type().has_shape()) return -1;
  return t->tensor_type().shape().dim_size();
}

}  // namespace

int fuse_matmul_transpose(Graph& graph) {
  int fused = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& mm = *graph.nodes[i];
    if (mm.op_type != "MatMul" || !mm.domain.empty() || mm.inputs.size() != 2) continue;
    const Node* ta = swap_last_two(graph, mm.inputs[0]);
    const Node* tb = swap_last_two(graph, mm.inputs[1]);
    if (!ta && !tb) continue;
    // Both operands must keep rank 2 or more, which MatMul's 1-D promotion would change.
    const std::string a = ta ? ta->inputs[0] : mm.inputs[0];
    const std::string b = tb ? tb->inputs[0] : mm.inputs[1];
    if (static_rank(graph, mm.inputs[0]) < 2 && !ta) continue;
    if (static_rank(graph, mm.inputs[1]) < 2 && !tb) continue;
    std::vector<const Node*> dead;
    if (ta) dead.push_back(ta);
    if (tb) dead.push_back(tb);
    mm.op_type = "FusedMatMul";
    mm.domain = "com.graft";
    mm.inputs = {a, b};
    auto attr = [](const char* name, int64_t v) {
      Attribute at;
      at.name = name;
      at.proto = std::make_shared<onnx::AttributeProto>();
      at.proto->set_name(name);
      at.proto->set_type(onnx::AttributeProto::INT);
      at.proto->set_i(v);
      return at;
    };
    mm.attributes = {attr("transA", ta != nullptr), attr("transB", tb != nullptr)};
    for (const Node* t : dead) {
      graph.value_info.erase(t->outputs[0]);
      graph.remove_node(t);
    }
    i = 0;  // indices moved; the pass is cheap
    ++fused;
  }
  return fused;
}

}  // namespace graft::ir
