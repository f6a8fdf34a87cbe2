// Gradient rules: for one op, emit ONNX nodes that compute the gradients of its inputs from the
// gradients of its outputs. Rules are keyed by (domain, op_type, schema since_version range) and
// register themselves with GRAFT_GRADIENT_RULES, like kernels.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/model.h"

namespace graft::autodiff {

// An attribute for an emitted node. Build with the helpers below.
struct Attr {
  std::shared_ptr<onnx::AttributeProto> proto;
  static Attr i(const std::string& name, int64_t value);
  static Attr f(const std::string& name, float value);
  static Attr s(const std::string& name, const std::string& value);
  static Attr ints(const std::string& name, const std::vector<int64_t>& values);
  // A 1-element tensor attribute (ConstantOfShape's value) of element type `dtype`.
  static Attr scalar_tensor(const std::string& name, int32_t dtype, double value);
  // Copies attribute `name` of `node` (under the same name), if present.
  static std::vector<Attr> copy(const ir::Node& node, const std::vector<std::string>& names);
};

class GradientGraph;

// What a rule sees: the forward node, the gradients reaching its outputs, and a way to emit
// nodes. Value names are the forward graph's; emitted values get fresh unique names.
class RuleContext {
 public:
  RuleContext(GradientGraph& graph, const ir::Node& node, int64_t opset);

  const ir::Node& node() const { return node_; }
  int64_t opset() const { return opset_; }
  int num_inputs() const { return static_cast<int>(node_.inputs.size()); }
  int num_outputs() const { return static_cast<int>(node_.outputs.size()); }
  const std::string& input(int i) const;   // "" when omitted
  const std::string& output(int i) const;  // "" when omitted
  // The gradient reaching output `i`; "" when none does (the output does not lead to the loss).
  std::string output_grad(int i) const;
  // Whether the gradient of input `i` is wanted (it leads back to a parameter).
  bool needs_input_grad(int i) const;
  // Records the gradient of input `i`. Contributions from several readers are summed.
  void set_input_grad(int i, const std::string& value);

  // Emits a node and returns its output names.
  std::vector<std::string> emit(const std::string& op_type, const std::vector<std::string>& inputs,
                                int num_outputs = 1, const std::vector<Attr>& attrs = {},
                                const std::string& domain = "");
  std::string emit1(const std::string& op_type, const std::vector<std::string>& inputs,
                    const std::vector<Attr>& attrs = {}, const std::string& domain = "");
  // Emits a fused gradient op of domain com.graft. `body` (ONNX text format, a function of the
  // op's inputs, outputs and attributes written with standard ops) is declared once in the
  // output model as a model-local function, so any ONNX runtime can run the node; graft runs
  // its own kernel for it.
  std::string emit_fused(const std::string& op_type, const std::vector<std::string>& inputs,
                         const std::vector<Attr>& attrs, const char* body);
  // The same for a fused op with several outputs, of which only the `wanted` ones are named (the
  // others are left empty, so the kernel skips them). Returns the names, "" where not wanted.
  std::vector<std::string> emit_fused(const std::string& op_type,
                                      const std::vector<std::string>& inputs,
                                      const std::vector<bool>& wanted,
                                      const std::vector<Attr>& attrs, const char* body);

  // Helpers shared by many rules.
  // A scalar constant of the same element type as `like`.
  std::string scalar_like(double value, const std::string& like);
  // An int64 1-D constant.
  std::string ints_constant(const std::vector<int64_t>& values);
  // Sums `grad` down to the shape of `target`. `grad` is shaped like the node's first output
  // (the broadcast result) unless `grad_shape` says otherwise (-1 for a dimension known only at
  // run time, which still fixes the rank); static shapes give a single
  // ReduceSum, unknown ones a small shape-computing subgraph.
  std::string unbroadcast(const std::string& grad, const std::string& target);
  std::string unbroadcast(const std::string& grad, const std::string& target,
                          const std::optional<std::vector<int64_t>>& grad_shape);
  // The full static shape of a forward value, when shape inference knows every dimension.
  std::optional<std::vector<int64_t>> static_shape(const std::string& value) const;
  // The rank of `value` when shape inference knows it, else -1.
  int64_t static_rank(const std::string& value) const;
  // The ONNX element type of `value` (TensorProto::DataType), 0 when unknown.
  int32_t elem_type(const std::string& value) const;
  // The elements of an integer `value` fixed when the model is built (an initializer or a
  // Constant node's output); nullopt otherwise.
  std::optional<std::vector<int64_t>> constant_ints(const std::string& value) const;
  // Attribute readers on the forward node.
  int64_t attr_int(const std::string& name, int64_t fallback) const;
  float attr_float(const std::string& name, float fallback) const;
  std::string attr_string(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& name) const;
  // Throws InvalidArgument naming the node.
  [[noreturn]] void fail(const std::string& message) const;
  // The graph under construction, for rules of nodes with nested graphs (If).
  GradientGraph& graph() { return graph_; }

 private:
  GradientGraph& graph_;
  const ir::Node& node_;
  int64_t opset_;
};

using GradientRule = void (*)(RuleContext& ctx);

struct RuleDef {
  std::string domain;
  std::string op_type;
  int since = 1;
  int until = 1 << 30;
  GradientRule rule = nullptr;
};

class RuleRegistry {
 public:
  void add(RuleDef def);
  // nullptr when no rule covers (domain, op_type) at schema version `since_version`.
  const RuleDef* find(const std::string& domain, const std::string& op_type,
                      int since_version) const;
  const std::vector<RuleDef>& defs() const { return defs_; }

 private:
  std::vector<RuleDef> defs_;
};

RuleRegistry& gradient_rules();

struct RuleRegistrar {
  explicit RuleRegistrar(void (*fn)(RuleRegistry&)) { fn(gradient_rules()); }
};

// Usage, at namespace scope in a rules file:
//   GRAFT_GRADIENT_RULES(math) { reg.add({"", "Add", 7, 1 << 30, &add_grad}); }
#define GRAFT_GRADIENT_RULES(tag)                                               \
  static void graft_gradient_rules_##tag(::graft::autodiff::RuleRegistry& reg); \
  static const ::graft::autodiff::RuleRegistrar graft_gradient_registrar_##tag( \
      &graft_gradient_rules_##tag);                                             \
  static void graft_gradient_rules_##tag(::graft::autodiff::RuleRegistry& reg)

}  // namespace graft::autodiff
