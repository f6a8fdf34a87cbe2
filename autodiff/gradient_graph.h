// The gradient graph under construction: emitted nodes, gradient contributions per forward
// value, and which values need gradients. Internal to autodiff.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "autodiff/rule.h"
#include "ir/names.h"

namespace graft::autodiff {

class GradientGraph {
 public:
  explicit GradientGraph(ir::Model& model);
  // For a nested graph (an If branch): names come from `parent`'s pool so they never collide
  // with the enclosing graph's, and types of outer values are looked up there.
  GradientGraph(ir::Model& model, ir::Graph& graph, GradientGraph* parent);
  ir::Model& model() { return model_; }
  ir::Graph& graph() { return graph_; }

  // A fresh value name derived from `base` ("<base>_grad/<n>").
  std::string fresh(const std::string& base);
  std::vector<std::string> emit(const std::string& base, const std::string& op_type,
                                const std::vector<std::string>& inputs, int num_outputs,
                                const std::vector<Attr>& attrs, const std::string& domain);
  void add_contribution(const std::string& value, const std::string& grad);
  // The summed gradient of `value` ("" when nothing contributed).
  std::string grad_of(const std::string& value);
  bool needs_grad(const std::string& value) const { return needs_grad_.count(value) > 0; }
  void set_needs_grad(std::set<std::string> values) { needs_grad_ = std::move(values); }
  std::optional<std::vector<int64_t>> static_shape(const std::string& value) const;
  int32_t elem_type(const std::string& value) const;  // 0 when unknown
  int64_t rank_of(const std::string& value) const;    // -1 when unknown
  std::vector<ir::Node>& emitted() { return emitted_; }
  // Adds the com.graft function `op_type` parsed from `body` (ONNX text format) to the model,
  // once, and imports com.graft.
  void declare_function(const std::string& op_type, const char* body);

 private:
  ir::Model& model_;
  ir::Graph& graph_;
  std::set<std::string> taken_;
  std::set<std::string> needs_grad_;
  std::map<std::string, std::vector<std::string>> contributions_;
  std::vector<ir::Node> emitted_;
  int counter_ = 0;
  GradientGraph* parent_ = nullptr;
};

// The nodes between `sources` (values wanting gradients) and `targets` (values receiving
// them), in reverse topological order, and the values on those paths.
struct BackwardPlan {
  std::vector<const ir::Node*> order;
  std::set<std::string> needs;
};
BackwardPlan plan_backward(const ir::Graph& g, const std::vector<std::string>& sources,
                           const std::set<std::string>& targets);

// Runs each planned node's gradient rule into `grads`. `path` describes how a node is reached,
// for the error about a node without a rule. Rules of nodes with nested graphs (If) use this to
// differentiate a nested graph with its own GradientGraph whose parent is the enclosing one.
void run_rules(GradientGraph& grads, const BackwardPlan& plan,
               const std::function<std::string(const ir::Node*)>& path);

}  // namespace graft::autodiff
