#include "ir/transforms/layout_util.h"

#include "onnx/onnx_pb.h"

namespace graft::ir {

NameSource::NameSource(const Graph& g) {
  for (const auto& n : g.nodes) {
    taken_.insert(n->inputs.begin(), n->inputs.end());
    taken_.insert(n->outputs.begin(), n->outputs.end());
  }
  for (const auto& v : g.inputs) taken_.insert(v.name);
  for (const auto& t : g.initializers) taken_.insert(t->name());
}

std::string NameSource::fresh(const std::string& base) {
  std::string name = base;
  for (int k = 1; taken_.count(name); ++k) name = base + "_" + std::to_string(k);
  taken_.insert(name);
  return name;
}

bool read_outside(const Graph& g, const std::string& value,
                  const std::set<const Node*>& rewritten) {
  if (g.is_graph_output(value)) return true;
  for (const Node* reader : g.consumers(value)) {
    if (!rewritten.count(reader)) return true;
  }
  return false;
}

}  // namespace graft::ir
