// ONNX's Gradient operator (ai.onnx.preview.training): each Gradient node is replaced by the
// gradient subgraph of its `y` with respect to its `xs`, built by the gradient-graph builder.
#include <algorithm>

#include "autodiff/gradient.h"
#include "ir/error.h"
#include "ir/names.h"
#include "onnx/onnx_pb.h"

namespace graft::autodiff {
namespace {

const char* kTrainingDomain = "ai.onnx.preview.training";

bool is_gradient_op(const ir::Node& n) {
  return n.op_type == "Gradient" && n.domain == kTrainingDomain;
}

}  // namespace

bool has_gradient_ops(const ir::Model& model) {
  return std::any_of(model.graph.nodes.begin(), model.graph.nodes.end(),
                     [](const auto& n) { return is_gradient_op(*n); });
}

ir::Model expand_gradient_ops(const ir::Model& model) {
  ir::Model current = model.clone();
  while (true) {
    auto it = std::find_if(current.graph.nodes.begin(), current.graph.nodes.end(),
                           [](const auto& n) { return is_gradient_op(*n); });
    if (it == current.graph.nodes.end()) return current;
    const ir::Node grad_node = **it;
    const ir::Attribute* xs_attr = grad_node.find_attr("xs");
    const ir::Attribute* y_attr = grad_node.find_attr("y");
    if (!xs_attr || !y_attr)
      throw InvalidArgument(grad_node.describe() + ": needs the 'xs' and 'y' attributes");
    std::vector<std::string> xs(xs_attr->proto->strings().begin(), xs_attr->proto->strings().end());
    const std::string y = y_attr->proto->s();
    if (xs.size() != grad_node.outputs.size()) {
      throw InvalidArgument(grad_node.describe() + ": has " +
                            std::to_string(grad_node.outputs.size()) + " outputs for " +
                            std::to_string(xs.size()) + " names in 'xs'");
    }
    // Differentiate the graph without this node, then route "<x>_grad" to the node's outputs.
    ir::Model forward = current.clone();
    forward.graph.remove_node(
        forward.graph.nodes[static_cast<size_t>(it - current.graph.nodes.begin())].get());
    std::vector<ir::ValueInfo> outputs = forward.graph.outputs;
    forward.graph.outputs.erase(
        std::remove_if(forward.graph.outputs.begin(), forward.graph.outputs.end(),
                       [&](const ir::ValueInfo& v) {
                         return std::find(grad_node.outputs.begin(), grad_node.outputs.end(),
                                          v.name) != grad_node.outputs.end();
                       }),
        forward.graph.outputs.end());
    ir::Model expanded = build_gradient_graph(forward, y, xs);
    for (size_t i = 0; i < xs.size(); ++i) {
      if (grad_node.outputs[i].empty()) continue;
      ir::Node id;
      id.op_type = "Identity";
      id.name = grad_node.name.empty() ? grad_node.outputs[i] : grad_node.name + "/" + xs[i];
      id.inputs = {xs[i] + names::kGradSuffix};
      id.outputs = {grad_node.outputs[i]};
      expanded.graph.add_node(std::move(id));
    }
    expanded.graph.outputs = outputs;
    expanded.graph.renumber();
    current = std::move(expanded);
  }
}

}  // namespace graft::autodiff
