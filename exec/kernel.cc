#include "exec/kernel.h"

#include <cstring>

#include "exec/tensor_proto.h"
#include "ir/model.h"
#include "onnx/onnx_pb.h"

namespace graft {

// ---------------------------------------------------------------------------------------------
// KernelInfo

KernelInfo::KernelInfo(const ir::Node& node, int since_version, std::vector<DType> input_dtypes,
                       std::vector<const Tensor*> constant_inputs,
                       const ExecutionProvider* provider)
    : node_(node),
      since_version_(since_version),
      input_dtypes_(std::move(input_dtypes)),
      constant_inputs_(std::move(constant_inputs)),
      provider_(provider) {}

const std::string& KernelInfo::op_type() const { return node_.op_type; }

std::string KernelInfo::describe() const { return node_.describe(); }

void KernelInfo::fail(const std::string& message) const {
  throw InvalidArgument(describe() + ": " + message);
}

int KernelInfo::num_inputs() const { return static_cast<int>(node_.inputs.size()); }
int KernelInfo::num_outputs() const { return static_cast<int>(node_.outputs.size()); }

bool KernelInfo::has_input(int i) const {
  return i >= 0 && i < num_inputs() && !node_.inputs[static_cast<size_t>(i)].empty();
}

bool KernelInfo::has_output(int i) const {
  return i >= 0 && i < num_outputs() && !node_.outputs[static_cast<size_t>(i)].empty();
}

DType KernelInfo::input_dtype(int i) const {
  if (i < 0 || static_cast<size_t>(i) >= input_dtypes_.size()) return DType::Undefined;
  return input_dtypes_[static_cast<size_t>(i)];
}

const Tensor* KernelInfo::constant_input(int i) const {
  if (i < 0 || static_cast<size_t>(i) >= constant_inputs_.size()) return nullptr;
  return constant_inputs_[static_cast<size_t>(i)];
}

bool KernelInfo::has_attr(const std::string& name) const {
  return node_.find_attr(name) != nullptr;
}

namespace {

const onnx::AttributeProto* find_proto(const ir::Node& node, const std::string& name) {
  const ir::Attribute* a = node.find_attr(name);
  return a ? a->proto.get() : nullptr;
}

}  // namespace

int64_t KernelInfo::attr_int(const std::string& name, int64_t fallback) const {
  const auto* a = find_proto(node_, name);
  return a ? a->i() : fallback;
}

float KernelInfo::attr_float(const std::string& name, float fallback) const {
  const auto* a = find_proto(node_, name);
  return a ? a->f() : fallback;
}

std::string KernelInfo::attr_string(const std::string& name, const std::string& fallback) const {
  const auto* a = find_proto(node_, name);
  return a ? a->s() : fallback;
}

std::vector<int64_t> KernelInfo::attr_ints(const std::string& name) const {
  const auto* a = find_proto(node_, name);
  if (!a) return {};
  return {a->ints().begin(), a->ints().end()};
}

std::vector<float> KernelInfo::attr_floats(const std::string& name) const {
  const auto* a = find_proto(node_, name);
  if (!a) return {};
  return {a->floats().begin(), a->floats().end()};
}

std::vector<std::string> KernelInfo::attr_strings(const std::string& name) const {
  const auto* a = find_proto(node_, name);
  if (!a) return {};
  return {a->strings().begin(), a->strings().end()};
}

Tensor KernelInfo::attr_tensor(const std::string& name) const {
  const auto* a = find_proto(node_, name);
  if (!a || !a->has_t()) fail("missing tensor attribute '" + name + "'");
  try {
    return tensor_from_proto(a->t());
  } catch (const InvalidArgument& e) {
    fail("attribute '" + name + "': " + e.what());
  }
}

Tensor KernelInfo::attr_sparse_tensor(const std::string& name) const {
  const auto* a = find_proto(node_, name);
  if (!a || !a->has_sparse_tensor()) fail("missing sparse tensor attribute '" + name + "'");
  try {
    return tensor_from_sparse_proto(a->sparse_tensor());
  } catch (const InvalidArgument& e) {
    fail("attribute '" + name + "': " + e.what());
  }
}

const ir::Graph* KernelInfo::attr_graph(const std::string& name) const {
  const ir::Attribute* a = node_.find_attr(name);
  if (!a || a->graphs.empty()) return nullptr;
  return a->graphs[0].get();
}

int64_t KernelInfo::required_int(const std::string& name) const {
  const auto* a = find_proto(node_, name);
  if (!a) fail("missing required attribute '" + name + "'");
  return a->i();
}

// ---------------------------------------------------------------------------------------------
// KernelContext

KernelContext::KernelContext(const std::string& node_desc, std::vector<const Value*> inputs,
                             std::vector<Value*> outputs,
                             std::function<SubgraphRunner&(const std::string&)> subgraphs,
                             Allocator& allocator)
    : node_desc_(node_desc),
      inputs_(std::move(inputs)),
      outputs_(std::move(outputs)),
      subgraphs_(std::move(subgraphs)),
      allocator_(allocator) {}

bool KernelContext::has_input(int i) const {
  return i >= 0 && i < num_inputs() && inputs_[static_cast<size_t>(i)] != nullptr &&
         !inputs_[static_cast<size_t>(i)]->is_none();
}

const Value& KernelContext::input_value(int i) const {
  static const Value none;
  if (i < 0 || i >= num_inputs() || inputs_[static_cast<size_t>(i)] == nullptr) return none;
  return *inputs_[static_cast<size_t>(i)];
}

const Tensor& KernelContext::input(int i) const {
  if (!has_input(i)) fail("input " + std::to_string(i) + " is missing");
  const Value& v = *inputs_[static_cast<size_t>(i)];
  if (!v.is_tensor()) fail("input " + std::to_string(i) + " is not a tensor");
  return v.tensor();
}

bool KernelContext::has_output(int i) const {
  return i >= 0 && i < num_outputs() && outputs_[static_cast<size_t>(i)] != nullptr;
}

Tensor& KernelContext::output(int i, DType dtype, const Shape& shape) {
  if (!has_output(i)) {
    // The graph does not use this output: hand back scratch space the kernel may fill.
    if (i < 0 || i >= num_outputs()) fail("output " + std::to_string(i) + " does not exist");
    try {
      scratch_.emplace_back(Tensor::empty(dtype, shape, allocator_));
    } catch (const std::exception& e) {
      fail("output " + std::to_string(i) + ": " + e.what());
    }
    return scratch_.back().tensor();
  }
  for (int64_t d : shape) {
    if (d < 0)
      fail("output " + std::to_string(i) + " would have negative shape " + shape_to_string(shape));
  }
  Value* out = outputs_[static_cast<size_t>(i)];
  try {
    *out = Value(memory_ ? memory_->allocate(i, dtype, shape, allocator_)
                         : Tensor::empty(dtype, shape, allocator_));
  } catch (const std::bad_alloc&) {
    fail("output " + std::to_string(i) + ": out of " + allocator_.name() + " memory allocating a " +
         dtype_name(dtype) + " tensor of shape " + shape_to_string(shape) + " (" +
         std::to_string(shape_size(shape)) + " elements of " + std::to_string(dtype_size(dtype)) +
         " bytes)");
  } catch (const std::exception& e) {
    fail("output " + std::to_string(i) + ": " + e.what());
  }
  return out->tensor();
}

Tensor& KernelContext::output_zeroed(int i, DType dtype, const Shape& shape) {
  Tensor& out = output(i, dtype, shape);
  if (out.nbytes() > 0 && dtype != DType::String) allocator_.fill(out.raw(), 0, out.nbytes());
  return out;
}

void KernelContext::set_output(int i, Value value) {
  if (!has_output(i)) return;
  *outputs_[static_cast<size_t>(i)] = std::move(value);
}

SubgraphRunner& KernelContext::subgraph(const std::string& attr) {
  if (!subgraphs_) fail("has no graph attribute '" + attr + "'");
  return subgraphs_(attr);
}

void KernelContext::fail(const std::string& message) const {
  throw Fail(node_desc_ + ": " + message);
}

// ---------------------------------------------------------------------------------------------
// KernelRegistry

void KernelRegistry::add(KernelDef def) {
  def.domain = ir::canonical_domain(def.domain);
  defs_.push_back(std::move(def));
}

const KernelDef* KernelRegistry::find(const std::string& domain, const std::string& op_type,
                                      int since_version, const std::vector<DType>& input_dtypes,
                                      const ir::Node* node) const {
  for (const auto& d : defs_) {
    if (d.op_type != op_type || d.domain != domain) continue;
    if (since_version < d.since || since_version > d.until) continue;
    if (node != nullptr && d.accepts && !d.accepts(*node)) continue;
    const auto k = static_cast<size_t>(d.type_input);
    const DType dtype = k < input_dtypes.size() ? input_dtypes[k] : DType::Undefined;
    if (dtype == DType::Undefined || d.dtypes.empty()) return &d;
    for (DType t : d.dtypes) {
      if (t == dtype) return &d;
    }
  }
  return nullptr;
}

const KernelDef* KernelRegistry::find_op(const std::string& domain, const std::string& op_type,
                                         int since_version, const ir::Node* node) const {
  return find(domain, op_type, since_version, {}, node);
}

bool KernelRegistry::has_op(const std::string& domain, const std::string& op_type,
                            int since_version) const {
  return find_op(domain, op_type, since_version) != nullptr;
}

KernelRegistry& cpu_kernel_registry() {
  static KernelRegistry registry;
  return registry;
}

}  // namespace graft
