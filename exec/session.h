// InferenceSession: a loaded, optimized and planned model, ready to run many times.
#pragma once

#include "ir/api.h"

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "exec/error.h"
#include "exec/value.h"

namespace graft {

namespace ir {
class Model;
}

class GraphPlan;
struct Profiler;

// How a session runs its nodes (onnxruntime's ExecutionMode).
enum class ExecutionMode {
  Sequential = 0,  // one after another, in graph order, each with intra_op_num_threads threads
  // Nodes whose inputs are ready run at the same time on inter_op_num_threads threads, which
  // share the intra_op_num_threads threads among them; the results are the sequential ones.
  Parallel = 1,
};

struct SessionOptions {
  int intra_op_num_threads = 0;  // 0: the OpenMP default (all cores)
  ExecutionMode execution_mode = ExecutionMode::Sequential;
  int inter_op_num_threads = 0;  // threads of the parallel mode; 0: as intra_op_num_threads
  // 0 disables graph rewrites, 1 basic, 2 extended, 99 all (the onnxruntime levels).
  int graph_optimization_level = 99;
  std::string optimized_model_filepath;  // when set, the optimized model is saved there
  bool enable_profiling = false;
  std::string profile_file_prefix = "graft_profile";
  // Per provider name, its options (onnxruntime's provider_options): {"CUDAExecutionProvider":
  // {{"device_id", "1"}}}.
  std::map<std::string, std::map<std::string, std::string>> provider_options;
  // onnxruntime's memory pattern: the first run with a given set of input shapes records the
  // lifetime of every intermediate tensor, later runs with those shapes place them in one
  // planned arena per allocator (exec/memory_plan.h).
  bool enable_mem_pattern = true;
  // The most bytes the session's runs (and the constant folding at its creation) may hold in
  // any one allocator: an allocation past it fails naming the node, the output and the size
  // (exec/memory_limit.h). 0: the default, 80% of physical memory for host memory.
  size_t memory_limit_bytes = 0;
};

// Settings of one run (onnxruntime's RunOptions).
struct RunOptions {
  // Outputs made on a device stay in its memory instead of being copied to the host (the
  // tensors of an I/O binding; training state kept on the device between steps). Only the copies
  // that merely return an output are skipped: an output a host node also reads comes back in host
  // memory. Tensor::to_host() brings a device output to the host.
  bool outputs_on_device = false;
  // When set, the run checks it before each node of the main graph and throws Fail once another
  // thread has set it (onnxruntime's RunOptions.terminate). The caller keeps it alive for the run.
  const std::atomic<bool>* terminate = nullptr;
  // Runs only the nodes the requested outputs depend on (onnxruntime's option of the same name);
  // with every output requested, or in the parallel execution mode, every node runs.
  bool only_execute_path_to_fetches = false;
};

// What an input or output of the model looks like, as onnxruntime's NodeArg reports it.
struct IOInfo {
  std::string name;
  std::string type;  // "tensor(float)", "seq(tensor(int64))", "map(int64,tensor(float))"
  DType dtype = DType::Undefined;       // element type
  std::vector<int64_t> dims;            // -1 for a dimension that is not a fixed number
  std::vector<std::string> dim_params;  // the symbolic name where dims[i] is -1 ("" if none)
  bool has_shape = false;
};

// Why `value` cannot be fed as the input `info` describes (another kind of value, element type,
// rank or fixed dimension), or "" when it can. Every feed check of a run goes through it.
GRAFT_API std::string feed_mismatch(const IOInfo& info, const Value& value);

class GRAFT_API InferenceSession {
 public:
  // Builds a session from a model: inlines functions that have no kernel, optimizes, assigns
  // every node to a provider (in `providers` order, default default_providers()) and plans it.
  // Throws NotImplemented when a node has no kernel (naming op, domain, opset), InvalidArgument
  // for an invalid model or an unknown provider.
  InferenceSession(ir::Model model, SessionOptions options = {},
                   std::vector<std::string> providers = {});
  static InferenceSession from_file(const std::string& path, SessionOptions options = {},
                                    std::vector<std::string> providers = {});
  // `base_dir`: where external data the model names is read from (default: the working
  // directory), with load_model's checks.
  static InferenceSession from_bytes(const std::string& bytes, SessionOptions options = {},
                                     std::vector<std::string> providers = {},
                                     const std::string& base_dir = "");
  InferenceSession(InferenceSession&&) noexcept;
  ~InferenceSession();

  // Runs the model. `output_names` empty means every output. Feeds are checked against the
  // declared inputs (name, element type, rank and fixed dimensions): a mismatch throws
  // InvalidArgument naming the input. A feed may be in host memory or already in the memory of
  // one of the session's providers (the device copy is then skipped). Outputs are in host memory
  // unless `options` says otherwise.
  std::vector<Value> run(const std::vector<std::string>& output_names,
                         const std::map<std::string, Value>& feeds, const RunOptions& options = {});

  // run() with the tensors of `donated` that are inputs of the model moved into the run, so an
  // in-place kernel may update their buffers (the state of a training step; entries the model
  // does not read stay as they are). A buffer is updated in place only when nothing else holds
  // it. On success the moved entries are left empty, for the caller to refill from the outputs;
  // if the run throws they hold their tensors again. Throws as run() does.
  std::vector<Value> run_donating(const std::vector<std::string>& output_names,
                                  const std::map<std::string, Value>& feeds,
                                  std::map<std::string, Tensor>& donated,
                                  const RunOptions& options = {});

  const std::vector<IOInfo>& inputs() const { return inputs_; }
  const std::vector<IOInfo>& outputs() const { return outputs_; }
  const std::vector<IOInfo>& overridable_initializers() const { return overridable_; }
  const std::vector<std::string>& providers() const { return providers_; }
  const ir::Model& model() const { return *model_; }
  // The bytes of the arenas the latest run's memory pattern planned, per allocator name ("Cpu",
  // "Cuda"...): the peak of the intermediate tensors kernels allocate (graph outputs and inputs
  // not included). Empty before the first run and with enable_mem_pattern off.
  std::map<std::string, size_t> planned_peak_bytes() const;
  // Per node of the main graph as it runs (after optimization), in run order: the provider that
  // runs it, and its name, op type and domain.
  struct NodeAssignment {
    std::string provider, node_name, op_type, domain;
  };
  std::vector<NodeAssignment> node_assignments() const;
  // When profiling started, in nanoseconds since the epoch (0 when profiling is off).
  int64_t profiling_start_time_ns() const;
  // Stops profiling and writes the trace (Chrome trace-event JSON); returns its path ("" when
  // profiling is off).
  std::string end_profiling();

 private:
  std::vector<Value> run_impl(const std::vector<std::string>& output_names,
                              const std::map<std::string, Value>& feeds,
                              std::map<std::string, Tensor>* donated, const RunOptions& options);
  std::unique_ptr<ir::Model> model_;
  SessionOptions options_;
  std::vector<std::string> providers_;
  std::unique_ptr<GraphPlan> plan_;
  std::vector<IOInfo> inputs_, outputs_, overridable_;
  std::unique_ptr<Profiler> profiler_;
};

}  // namespace graft
