#include "ir/transforms/optimize.h"

namespace graft::ir {
namespace {

int optimize_graph(Graph& graph, int level) {
  int changes = 0;
  for (auto& n : graph.nodes) {
    for (auto& a : n->attributes) {
      for (auto& g : a.graphs) changes += optimize_graph(*g, level);
    }
  }
  if (level >= 1) changes += eliminate_identity(graph);
  if (level >= 2) changes += fold_conv_batchnorm(graph);
  graph.renumber();
  return changes;
}

}  // namespace

int optimize(Model& model, int level) {
  return level <= 0 ? 0 : optimize_graph(model.graph, level);
}

}  // namespace graft::ir
