#include "ir/transforms/optimize.h"
#include "ir/names.h"
#include "ir/transforms/transformer_fusions.h"

namespace graft::ir {
namespace {

int optimize_graph(Graph& graph, int level, int64_t onnx_opset, bool* uses_graft_domain) {
  int changes = 0;
  for (auto& n : graph.nodes) {
    for (auto& a : n->attributes) {
      for (auto& g : a.graphs) changes += optimize_graph(*g, level, onnx_opset, uses_graft_domain);
    }
  }
  if (level >= 1) changes += eliminate_identity(graph);
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

int optimize(Model& model, int level) {
  if (level <= 0) return 0;
  bool uses_graft_domain = false;
  const int changes = optimize_graph(model.graph, level, model.opset(""), &uses_graft_domain);
  if (uses_graft_domain && !model.opset_imports.count(names::kDomain))
    model.opset_imports[names::kDomain] = 1;
  return changes;
}

}  // namespace graft::ir
