// Execution plan of one graph: values resolved to integer slots, one kernel per node, the
// slots each node frees and the outputs it may write into an input's buffer, all decided when
// the session is created. A run only walks the plan.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "exec/kernel.h"
#include "exec/session.h"

namespace graft {

namespace ir {
class Graph;
class Model;
}  // namespace ir

struct Profiler;

class ExecutionProvider;
class MemoryPatterns;
class ParallelExecutor;

// Implemented, besides Kernel, by a kernel that can write some outputs into the buffers of
// inputs (an optimizer updating parameters and moments in place). The planner allows a pair
// when the input is not a constant, not a graph output, read by no later node and by no other
// input of this node; each run it also checks that the input's buffer belongs to the run (a
// donated input or a value computed in the run) and that nothing else holds it.
class InPlaceKernel {
 public:
  virtual ~InPlaceKernel() = default;
  // (output, input) index pairs: the output may be written into the input's buffer when it has
  // the input's dtype and shape (an output may pair with several inputs). Asked once, when the
  // plan is built.
  virtual std::vector<std::pair<int, int>> in_place_pairs() const = 0;
  // Computes like Kernel::compute. `reuse[o]` is the input whose buffer output o may take this
  // run (the first of its pairs that may), or -1; `reuse` may be shorter than the outputs (-1
  // for the rest). The kernel writes the result there and sets the output to that input's
  // tensor, or allocates the output as usual.
  virtual void compute_in_place(KernelContext& ctx, const std::vector<int>& reuse) = 0;
};

// Everything a plan needs from the session while it is built.
struct PlanContext {
  const ir::Model& model;
  std::vector<const ExecutionProvider*> providers;  // preference order
};

class GraphPlan {
 public:
  // Builds the plan of `graph`. `outer_names` are values of enclosing graphs that nested nodes
  // may read; they become the first slots and are supplied per run. Throws NotImplemented when
  // a node has no kernel, naming its op, domain and opset.
  GraphPlan(const ir::Graph& graph, const PlanContext& ctx, std::vector<std::string> outer_names);
  ~GraphPlan();

  // Runs the graph. `inputs` are the graph's formal inputs in order (None values allowed for
  // inputs the caller leaves out, which then keep their initializer), in host memory or already in
  // a device provider's (an input a host node reads is then copied to the host first); `outer`
  // the outer-scope values in the order of outer_names. Returns the graph outputs in order, in
  // host memory unless `options.outputs_on_device`.
  // `fetches`, when given, are the indices of the outputs the caller reads; with
  // options.only_execute_path_to_fetches only the steps they depend on run (the other outputs
  // come back as None).
  std::vector<Value> run(const std::vector<Value>& inputs, const std::vector<const Value*>& outer,
                         Profiler* profiler = nullptr, const RunOptions& options = {},
                         const std::vector<size_t>* fetches = nullptr) const;
  // Runs a top-level graph with inputs handed over: each inputs[i] with donated[i] set is moved
  // into the run, so an in-place kernel may update its buffer when the caller kept no other
  // reference to it. On success the donated entries of `inputs` are left None; if the run
  // throws, they are moved back before the exception propagates, holding the values they had
  // unless the failing node came after the one that updated them in place.
  std::vector<Value> run_donated(std::vector<Value>& inputs, const std::vector<bool>& donated,
                                 Profiler* profiler = nullptr,
                                 const RunOptions& options = {}) const;

  // Keeps the providers the plan's kernels were made by alive as long as the plan.
  void own_providers(std::vector<std::unique_ptr<ExecutionProvider>> providers);

  // Turns on the memory pattern (SessionOptions::enable_mem_pattern): the first run with a
  // given set of input shapes records its buffers' lifetimes (exec/memory_plan.h), later runs
  // with those shapes place the outputs kernels allocate in one planned arena per allocator.
  // Nested plans keep allocating each output.
  void enable_mem_pattern();
  // Per allocator name, the arena bytes the latest run's pattern planned (the peak of the
  // buffers kernels allocate, graph outputs excluded); empty without a pattern.
  std::map<std::string, size_t> planned_peak_bytes() const;
  // Per step of this graph, in run order: the name of the provider that runs it and its node.
  std::vector<std::pair<std::string, const ir::Node*>> assignments() const;
  // Turns on the parallel execution mode (SessionOptions::execution_mode): a step starts once
  // the steps it reads from have finished, on one of `inter_op_threads` threads (the caller's
  // included), each running OpenMP loops with intra_op_threads / inter_op_threads threads (at
  // least one). Results are those of the sequential mode; such runs plan no memory pattern and
  // write no output into an input's buffer. Nested plans stay sequential.
  void enable_parallel(int inter_op_threads, int intra_op_threads);

  const std::vector<std::string>& input_names() const { return input_names_; }
  const std::vector<std::string>& output_names() const { return output_names_; }
  size_t num_slots() const { return num_slots_; }

 private:
  struct Step;
  // Declared first, destroyed last: every kernel goes before its provider.
  std::vector<std::unique_ptr<ExecutionProvider>> providers_;
  std::vector<std::string> input_names_;
  std::vector<std::string> output_names_;
  std::vector<int> input_slots_;
  std::vector<int> output_slots_;
  std::vector<int> outer_slots_;
  // Per input: whether a host node reads its elements (a feed in device memory is then copied to
  // the host before the run).
  std::vector<bool> input_read_on_host_;
  // Initializers, and the device copies of those that device kernels read (made once, when the
  // plan is built).
  std::vector<std::pair<int, Value>> constants_;
  std::vector<std::unique_ptr<Step>> steps_;
  std::map<std::string, int> slot_of_;
  size_t num_slots_ = 0;
  bool has_in_place_ = false;                   // some step may write into an input's buffer
  std::unique_ptr<MemoryPatterns> patterns_;    // null unless enable_mem_pattern was called
  std::unique_ptr<ParallelExecutor> parallel_;  // null unless enable_parallel was called
  // Per slot, how many steps read or write it: the parallel mode drops it after the last.
  std::vector<int> users_;
  // Input `i` as a host node may read it: `v`, or its copy in host memory when `v` is a device
  // tensor a host node reads.
  Value host_readable(size_t i, const Value& v) const;
  // Walks the steps over `slots` (inputs already placed). `foreign` lists buffers the run does
  // not own (inputs that were not donated, outer values); `held` marks slots never released.
  std::vector<Value> execute(std::vector<Value>& slots, std::vector<const Buffer*> foreign,
                             const std::vector<bool>& held, Profiler* profiler,
                             const std::atomic<bool>* terminate = nullptr,
                             const std::vector<bool>* needed = nullptr) const;
  // Per step, whether the outputs `fetches` (indices into the outputs) depend on it.
  std::vector<bool> steps_for(const std::vector<size_t>& fetches) const;
};

// Per-node timings collected while profiling is on.
struct Profiler {
  struct Event {
    std::string name;
    std::string op_type;
    int64_t start_us;
    int64_t duration_us;
  };
  std::vector<Event> events;
  int64_t origin_us = 0;
  int64_t start_ns = 0;  // when profiling started, in nanoseconds since the epoch
  // Starts the clock at now.
  Profiler();
  // Writes the events as a Chrome trace-event JSON file "<prefix>_<timestamp>.json"; returns
  // its path.
  std::string write_trace(const std::string& prefix) const;
};

// A model made ready for its providers and planned.
struct PlannedModel {
  std::unique_ptr<GraphPlan> plan;
  std::vector<std::string> providers;  // the providers' names, in preference order
};

// What every session does between its model and its plan: creates the providers named (empty:
// default_providers()), inlines the functions none of them has a kernel for, sorts the nodes,
// runs the graph rewrites of options.graph_optimization_level, makes the device boundaries copy
// nodes (insert_device_copies), saves the result to options.optimized_model_filepath when set,
// and plans it. Throws like create_provider and GraphPlan.
PlannedModel plan_model(ir::Model& model, const std::vector<std::string>& names,
                        const SessionOptions& options);

}  // namespace graft
