// The kernel contract: a Kernel is built once per node when a session is created (attributes
// parsed, constant weights prepared) and then computes once per run from a KernelContext.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "exec/error.h"
#include "exec/value.h"

namespace graft {

namespace ir {
class Node;
class Graph;
}  // namespace ir

// What a kernel may look at while it is being built. Lives only during construction.
class ExecutionProvider;

class GRAFT_API KernelInfo {
 public:
  KernelInfo(const ir::Node& node, int since_version, std::vector<DType> input_dtypes,
             std::vector<const Tensor*> constant_inputs,
             const ExecutionProvider* provider = nullptr);

  const ir::Node& node() const { return node_; }
  const std::string& op_type() const;
  // The since_version of the op schema the node resolves to (the model's opset for ops without
  // a schema).
  int since_version() const { return since_version_; }
  // "[Conv] node 'conv1'": the prefix of every error about this node.
  std::string describe() const;
  [[noreturn]] void fail(const std::string& message) const;  // throws InvalidArgument

  int num_inputs() const;        // as written in the node, omitted optional inputs included
  int num_outputs() const;       // as written in the node
  bool has_input(int i) const;   // present and not the empty name
  bool has_output(int i) const;  // present and not the empty name
  // Input dtype from type inference; Undefined when not known before running.
  DType input_dtype(int i) const;
  // The input's value when it is an initializer (a weight), else nullptr: in host memory, or for
  // a device kernel the device copy made once when the session was built. Valid for the life of
  // the session, so a kernel may keep the pointer.
  const Tensor* constant_input(int i) const;

  bool has_attr(const std::string& name) const;
  int64_t attr_int(const std::string& name, int64_t fallback) const;
  float attr_float(const std::string& name, float fallback) const;
  std::string attr_string(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& name) const;  // empty when absent
  std::vector<float> attr_floats(const std::string& name) const;
  std::vector<std::string> attr_strings(const std::string& name) const;
  // Throws InvalidArgument when absent.
  Tensor attr_tensor(const std::string& name) const;
  // A sparse tensor attribute in its dense form (tensor_from_sparse_proto); fails when absent.
  Tensor attr_sparse_tensor(const std::string& name) const;
  // nullptr when absent.
  const ir::Graph* attr_graph(const std::string& name) const;
  // Required attribute variants: fail() when absent.
  int64_t required_int(const std::string& name) const;
  // The provider whose registry the kernel comes from (its device, streams and library
  // handles); nullptr for a kernel built outside a session.
  const ExecutionProvider* provider() const { return provider_; }

 private:
  const ir::Node& node_;
  int since_version_;
  std::vector<DType> input_dtypes_;
  std::vector<const Tensor*> constant_inputs_;
  const ExecutionProvider* provider_;
};

class Kernel;

// Runs a nested graph (an If branch, a Loop or Scan body) on behalf of a control-flow kernel.
class SubgraphRunner {
 public:
  virtual ~SubgraphRunner() = default;
  // Feeds the body's formal inputs, runs it and returns its outputs in order. Outer-scope
  // values the body reads are taken from the frame of the node that owns it.
  virtual std::vector<Value> run(const std::vector<Value>& inputs) = 0;
  virtual size_t num_inputs() const = 0;
  virtual size_t num_outputs() const = 0;
};

// Where a run puts the outputs kernels allocate (exec/memory_plan.h: the planned arenas of a
// memory pattern). Without one, KernelContext::output allocates each from its provider.
class OutputMemory {
 public:
  virtual ~OutputMemory() = default;
  // A tensor of `dtype` and `shape` in `allocator`'s memory for output `output` of the node
  // being run; its elements are unspecified. Throws as Tensor::empty.
  virtual Tensor allocate(int output, DType dtype, const Shape& shape, Allocator& allocator) = 0;
};

// What a kernel sees during one run: its inputs, a way to allocate outputs, and nested graphs.
class GRAFT_API KernelContext {
 public:
  // Outputs are allocated from `allocator`: the memory of the provider running the node.
  KernelContext(const std::string& node_desc, std::vector<const Value*> inputs,
                std::vector<Value*> outputs,
                std::function<SubgraphRunner&(const std::string&)> subgraphs,
                Allocator& allocator = cpu_allocator());

  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  int num_outputs() const { return static_cast<int>(outputs_.size()); }
  // False for an omitted optional input (empty name), for a trailing one the node did not
  // write, and for a None value.
  bool has_input(int i) const;
  // The input as a tensor; fails with the node named when absent or not a tensor.
  const Tensor& input(int i) const;
  // The input as a Value; a None value when absent.
  const Value& input_value(int i) const;
  // False when the node does not produce output `i` (omitted name).
  bool has_output(int i) const;
  // Allocates output `i` with `dtype` and `shape` and returns it for filling; its elements are
  // unspecified (Tensor::empty) until the kernel writes them, which it must do for all of them.
  // For an output the node omits, returns scratch space that is dropped after the kernel runs.
  Tensor& output(int i, DType dtype, const Shape& shape);
  // As output(), zero-filled: for kernels that write only some elements or accumulate into it.
  Tensor& output_zeroed(int i, DType dtype, const Shape& shape);
  // Sets output `i` to an existing value (a view of an input, a sequence, ...).
  void set_output(int i, Value value);
  // The runner for the graph attribute `attr` of this node.
  SubgraphRunner& subgraph(const std::string& attr);
  [[noreturn]] void fail(const std::string& message) const;  // throws Fail with the node named
  const std::string& describe() const { return node_desc_; }
  // Where output() allocates.
  Allocator& allocator() const { return allocator_; }
  // Makes output() take its tensors from `memory` (not owned; nullptr: the allocator).
  void set_output_memory(OutputMemory* memory) { memory_ = memory; }

  // For a kernel whose work goes on in the background after compute returns (a collective that
  // overlaps the rest of the graph): the outputs are allocated, and `finish` blocks until they
  // hold their values, rethrowing any failure. The executor calls it before a later node reads
  // any of the outputs, and before the run returns or propagates an error.
  void finish_later(std::function<void()> finish) { finish_ = std::move(finish); }
  std::function<void()> take_finish() { return std::move(finish_); }

 private:
  const std::string& node_desc_;
  std::vector<const Value*> inputs_;
  std::vector<Value*> outputs_;
  std::function<SubgraphRunner&(const std::string&)> subgraphs_;
  std::function<void()> finish_;
  Allocator& allocator_;
  OutputMemory* memory_ = nullptr;
  std::deque<Value> scratch_;  // outputs the graph does not read
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Computes the outputs from the inputs. May throw Fail / InvalidArgument; must leave no
  // partial state that breaks the next run.
  virtual void compute(KernelContext& ctx) = 0;
  // Constant inputs (KernelInfo::constant_input) the kernel copied into a form of its own when it
  // was built (weights packed for its GEMM or convolution) and never reads again: compute() does
  // not touch them, and the session frees an initializer that every node reading it has packed.
  virtual std::vector<int> packed_inputs() const { return {}; }
};

using KernelFactory = std::function<std::unique_ptr<Kernel>(const KernelInfo&)>;

// One registered kernel: op (domain, op_type) for schema versions [since, until], accepting
// the listed dtypes on input `type_input` (any dtype when `dtypes` is empty).
struct KernelDef {
  std::string domain;  // "" for ai.onnx
  std::string op_type;
  int since = 1;
  int until = 1 << 30;
  std::vector<DType> dtypes;
  int type_input = 0;
  KernelFactory factory;
  // Inputs a device provider's kernel reads on the host (shapes, axes, indices of a Reshape,
  // Slice, Expand...): insert_device_copies leaves them in host memory, or copies them back there.
  std::vector<int> host_inputs = {};
  // Inputs whose elements the kernel never reads, only their dtype and shape (Shape, Size):
  // insert_device_copies hands them over wherever they live, without a copy.
  std::vector<int> metadata_inputs = {};
  // Whether the kernel can run this node (Cast to a type it cannot make, an attribute value it
  // lacks); empty accepts every node of the op. A declined node goes to the next provider that
  // can run it, with copies at the boundaries.
  std::function<bool(const ir::Node&)> accepts = nullptr;
};

class GRAFT_API KernelRegistry {
 public:
  void add(KernelDef def);
  // The first kernel for (domain, op_type, since_version) whose type constraint admits the dtype
  // of its own typed input (KernelDef::type_input) in `input_dtypes` and, when `node` is given,
  // that accepts it (KernelDef::accepts); an Undefined or missing dtype (not known before
  // running) is admitted by any. nullptr when none.
  const KernelDef* find(const std::string& domain, const std::string& op_type, int since_version,
                        const std::vector<DType>& input_dtypes,
                        const ir::Node* node = nullptr) const;
  // find() without dtypes: the first kernel for the op at that version (that accepts `node`
  // when given), whatever the type.
  const KernelDef* find_op(const std::string& domain, const std::string& op_type, int since_version,
                           const ir::Node* node = nullptr) const;
  // Whether any kernel exists for the op at that version, whatever the type.
  bool has_op(const std::string& domain, const std::string& op_type, int since_version) const;
  size_t size() const { return defs_.size(); }
  const std::vector<KernelDef>& defs() const { return defs_; }

 private:
  std::vector<KernelDef> defs_;
};

// The CPU provider's registry, filled by GRAFT_CPU_KERNELS blocks at static-init time.
GRAFT_API KernelRegistry& cpu_kernel_registry();

struct KernelRegistrar {
  explicit KernelRegistrar(void (*fn)(KernelRegistry&)) { fn(cpu_kernel_registry()); }
};

// Usage, at namespace scope in a kernel file:
//   GRAFT_CPU_KERNELS(relu) { reg.add({"", "Relu", 14, 1 << 30, {}, 0, make<Relu>}); }
// A custom-op library (a shared library built against these headers, loaded by
// SessionOptions.register_custom_ops_library) registers its kernels the same way.
#define GRAFT_CPU_KERNELS(tag)                                                        \
  static void graft_register_##tag(::graft::KernelRegistry& reg);                     \
  static const ::graft::KernelRegistrar graft_registrar_##tag(&graft_register_##tag); \
  static void graft_register_##tag(::graft::KernelRegistry& reg)

// Factory helper: make<K> builds K from a KernelInfo.
template <typename K>
std::unique_ptr<Kernel> make(const KernelInfo& info) {
  return std::make_unique<K>(info);
}

// Common type lists for KernelDef::dtypes. Inline, so every kernel file that includes this
// header sees them initialized before its own registrar runs.
inline const std::vector<DType> kFloatTypes = {DType::Float, DType::Double, DType::Float16,
                                               DType::BFloat16};
inline const std::vector<DType> kNumberTypes = {
    DType::Float, DType::Double, DType::Float16, DType::BFloat16, DType::Int8,   DType::Int16,
    DType::Int32, DType::Int64,  DType::UInt8,   DType::UInt16,   DType::UInt32, DType::UInt64};
inline const std::vector<DType> kSignedTypes = {DType::Float,    DType::Double, DType::Float16,
                                                DType::BFloat16, DType::Int8,   DType::Int16,
                                                DType::Int32,    DType::Int64};
inline const std::vector<DType> kAllTypes = {
    DType::Float,  DType::Double, DType::Float16, DType::BFloat16, DType::Int8,
    DType::Int16,  DType::Int32,  DType::Int64,   DType::UInt8,    DType::UInt16,
    DType::UInt32, DType::UInt64, DType::Bool,    DType::String};

}  // namespace graft
