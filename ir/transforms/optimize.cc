#include "ir/transforms/optimize.h"
#include "ir/names.h"
#include "ir/transforms/transformer_fusions.h"

namespace graft::ir {
namespace {

// Each basic pass can expose work for another (a folded Shape makes a Reshape a no-op, a merged
// node makes two readers identical): they run in turn until none changes anything, at most
// this many rounds.
constexpr int kMaxBasicRounds = 4;

int basic_passes(Graph& graph, const ConstantEvaluator& evaluate) {
  int changes = 0;
  for (int round = 0; round < kMaxBasicRounds; ++round) {
    int made = fold_constants(graph, evaluate);
    made += eliminate_noops(graph);
    made += eliminate_common_subexpressions(graph);
    made += eliminate_dead_nodes(graph);
    changes += made;
    if (made == 0) break;
  }
  return changes;
}

int optimize_graph(Graph& graph, int level, int64_t onnx_opset, const ConstantEvaluator& evaluate,
                   bool* uses_graft_domain) {
  int changes = 0;
  for (auto& n : graph.nodes) {
    for (auto& a : n->attributes) {
      for (auto& g : a.graphs)
        changes += optimize_graph(*g, level, onnx_opset, evaluate, uses_graft_domain);
    }
  }
  // Before constant folding, which would dequantize the weights.
  if (level >= 2 && fuse_qdq(graph) > 0) {
    ++changes;
    *uses_graft_domain = true;
  }
  if (level >= 1) changes += basic_passes(graph, evaluate);
  if (level >= 1) changes += pads_to_concat(graph);
  if (level >= 1) changes += simplify_layout(graph);
  if (level >= 2) changes += fold_conv_batchnorm(graph);
  // Before fuse_matmul_transpose, which would take the Transposes the attention pattern holds.
  if (level >= 2) {
    const int fused = fuse_gelu(graph, onnx_opset) + fuse_layer_norm(graph, onnx_opset) +
                      fuse_skip_layer_norm(graph) + fuse_attention(graph);
    changes += fused;
    *uses_graft_domain = *uses_graft_domain || fused > 0;
  }
  if (level >= 2 && fuse_matmul_transpose(graph) > 0) {
    ++changes;
    *uses_graft_domain = true;
  }
  graph.renumber();
  return changes;
}

}  // namespace

int optimize(Model& model, int level, const ConstantEvaluator& evaluate) {
  if (level <= 0) return 0;
  bool uses_graft_domain = false;
  const int changes =
      optimize_graph(model.graph, level, model.opset(""), evaluate, &uses_graft_domain);
  if (uses_graft_domain && !model.opset_imports.count(names::kDomain))
    model.opset_imports[names::kDomain] = 1;
  return changes;
}

}  // namespace graft::ir
