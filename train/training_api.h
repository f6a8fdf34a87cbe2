// On-device training over the artifacts that graft.training.generate_artifacts writes, with
// onnxruntime's training-API concepts: a CheckpointState holds the parameters, the optimizer
// state, the step and string properties; a Module runs the training model (gradients add up
// until the optimizer steps) and the eval model; an Optimizer applies the gradients with the
// optimizer model. The three models are plain ONNX files, each run by an InferenceSession.
//
//   auto paths = graft::training::ArtifactPaths::in_directory("artifacts");
//   auto state = graft::training::CheckpointState::load(paths.checkpoint);
//   graft::training::Module module(state, paths.training_model, paths.eval_model);
//   graft::training::Optimizer optimizer(module, paths.optimizer_model, 0.01f);
//   module.train_step({{"input", x}, {"labels", y}});
//   optimizer.step();
//   module.lazy_reset_grad();
//
// Threads: the calls of a CheckpointState and of the Modules and Optimizers over it are
// serialized by a lock the state holds: a call from a second thread waits for the one running,
// so two threads' train steps (or optimizer steps) all count, one after the other. A sequence
// of calls (train_step, step, lazy_reset_grad) is not one unit: threads that each run such a
// sequence interleave their calls, and keep the order they need with a lock of their own.
#pragma once

#include "ir/api.h"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "distributed/data_parallel.h"
#include "exec/session.h"
#include "exec/tensor.h"

namespace graft {
namespace ir {
class Model;
}

namespace training {

// The eval model's metadata entry that lists the base model's outputs, one a line: what
// Module::export_model_for_inferencing exports when given no output names.
inline constexpr char kInferenceOutputsMetadata[] = "graft.inference_outputs";

// The files generate_artifacts writes into its artifact directory.
struct GRAFT_API ArtifactPaths {
  std::string training_model, eval_model, optimizer_model, checkpoint;
  // "<dir>/training_model.onnx", "<dir>/eval_model.onnx", "<dir>/optimizer_model.onnx" and
  // "<dir>/checkpoint". Does not look at the files.
  static ArtifactPaths in_directory(const std::string& dir);
};

// Parameters (what the Module trains), optimizer state (what the Optimizer keeps between steps),
// the optimizer's step count and string properties. The file format is graft's checkpoint
// (train/checkpoint.h), so graft.checkpoint.load_checkpoint in Python reads it too.
class GRAFT_API CheckpointState {
 public:
  // A state in memory: `parameters`, no optimizer state, `step` steps taken, user `properties`.
  // Throws InvalidArgument for a property name graft reserves.
  explicit CheckpointState(std::map<std::string, Tensor> parameters = {}, int64_t step = 0,
                           const std::map<std::string, std::string>& properties = {});
  // Reads a checkpoint written by generate_artifacts, CheckpointState::save or
  // TrainingSession::save_checkpoint. Tensors listed in the "graft.optimizer_state" property
  // are optimizer state, the rest parameters. A saved random-generator state ("graft.rng")
  // becomes the default generator's (exec/generator.h). All or nothing: every part of the file is
  // checked first (each tensor entry as train/checkpoint.h says, the step not negative,
  // "graft.lr" a finite float that is not negative, "graft.rng" a generator state, the names
  // "graft.optimizer_state" lists held by the file), and the generator changes only once all
  // pass. Throws InvalidArgument naming the file and the tensor or property at fault when it is
  // missing, damaged or refused; the default generator is then as it was. Whether the tensors
  // fit a model is checked where a Module and an Optimizer take the state.
  static CheckpointState load(const std::string& path);
  // Writes the parameters and properties atomically (an existing file is replaced only once the
  // new one is complete). Launched with several ranks, rank 0 writes and every rank returns once
  // the file is complete (a collective: all ranks call it). With include_optimizer_state, also the
  // optimizer state, the step and the learning rate, so training resumes exactly; without, the step
  // is written as 0 (the parameters alone start a new training run, as in onnxruntime). The
  // default random generator's state is saved too. Throws InvalidArgument if the file cannot be
  // written (on every rank, with rank 0's message).
  void save(const std::string& path, bool include_optimizer_state = false) const;

  // The parameter called `name` (a copy sharing its buffer, which no later call writes into).
  // Throws InvalidArgument naming it when the state has none.
  Tensor parameter(const std::string& name) const;
  // Replaces a parameter's value with a copy of `value`. Throws InvalidArgument naming the
  // parameter when there is none, or when `value` has another shape or element type.
  void update_parameter(const std::string& name, const Tensor& value);
  // Replaces the parameter or optimizer-state tensor `name` with a copy of `value`, or adds a
  // parameter when the state holds no tensor of that name. Throws InvalidArgument naming it when
  // `value` has another shape or element type than the tensor it replaces.
  void set_tensor(const std::string& name, const Tensor& value);
  // Every parameter by name (copies, as parameter()).
  std::map<std::string, Tensor> parameters() const;
  // Optimizer moments and the like, by name ("fc.weight.adamw.m"); empty before the first step.
  std::map<std::string, Tensor> optimizer_state() const;
  // Optimizer steps taken.
  int64_t step() const;

  // Adds or replaces a user property (onnxruntime's AddProperty; graft stores strings).
  void add_property(const std::string& name, const std::string& value);
  // The property's value. Throws InvalidArgument naming it when the state has none.
  std::string property(const std::string& name) const;
  bool has_property(const std::string& name) const;
  // Every property by name, including graft's own ("graft.lr", "graft.optimizer").
  std::map<std::string, std::string> properties() const;
  // The file this state was loaded from ("" for one built in memory); errors name it.
  const std::string& path() const { return path_; }

 private:
  friend class Module;
  friend class Optimizer;
  // parameter() without the lock, for callers that hold it.
  const Tensor& held_parameter(const std::string& name) const;
  // Held by the public member functions of this class, of Module and of Optimizer while they
  // read or write what follows. In a box so that the state stays movable.
  std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
  std::map<std::string, Tensor> parameters_;
  std::map<std::string, Tensor> optimizer_state_;
  int64_t step_ = 0;
  std::map<std::string, std::string> properties_;
  std::string path_;
};

// The training model (forward, loss and "<p>_grad" outputs, parameters as inputs) and, when
// given, the eval model (forward and loss). The parameters are those p with a "<p>_grad" output;
// their values come from the CheckpointState at every step. Frozen parameters (inputs of the
// training model that the state holds, with no gradient output) come from the state too.
class GRAFT_API Module {
 public:
  // Loads the models. `state` must outlive the Module and stay where it is (it is read at every
  // step and written by the Optimizer). `eval_model_path` may be empty: then eval_step and
  // export_model_for_inferencing throw. Throws InvalidArgument naming the file when a model file
  // is missing or invalid, naming the parameter when `state` lacks one of the training model's
  // parameters or holds it with another shape or element type, and NotImplemented when a node
  // has no kernel.
  //
  // Data parallel (`data_parallel`; unset: when the process was launched with several ranks):
  // the state takes rank 0's parameters (a broadcast: every rank constructs its Module alike),
  // and the training model's gradients are averaged across ranks by com.graft.AllReduce nodes
  // (distributed::add_gradient_all_reduce), so each rank feeds its share of the batch and every
  // rank's Optimizer applies the same update; `data_parallel_options` sets their buckets.
  Module(CheckpointState& state, const std::string& training_model_path,
         const std::string& eval_model_path = "", SessionOptions options = {},
         std::optional<bool> data_parallel = std::nullopt,
         const distributed::DataParallelOptions& data_parallel_options = {});
  Module(Module&&) noexcept;
  ~Module();

  // Runs forward and backward on `feeds` (the training model's inputs other than parameters, by
  // name). The gradients add into the module's buffers, which start afresh at the first step and
  // at the first step after lazy_reset_grad. Returns the training model's outputs other than the
  // gradients, in model order (for generate_artifacts' models: the forward outputs, then "loss").
  // Throws InvalidArgument naming the input for a missing, unknown or mistyped feed, or for a
  // feed that names a parameter; the gradient buffers are then unchanged.
  std::vector<Value> train_step(const std::map<std::string, Value>& feeds);
  // The eval model's outputs (for generate_artifacts' models: the forward outputs, then "loss")
  // with the current parameters; no gradients, no update. Throws InvalidArgument when the Module
  // has no eval model, and for feeds as train_step does.
  std::vector<Value> eval_step(const std::map<std::string, Value>& feeds);
  // The next train_step replaces the gradient buffers instead of adding to them.
  void lazy_reset_grad();

  // Accumulated gradients by parameter name (copies of their values now); empty before the
  // first train_step.
  std::map<std::string, Tensor> gradients() const;
  // The trained parameters, in the order of the training model's gradient outputs.
  const std::vector<std::string>& parameter_names() const { return params_; }
  // The frozen parameters: inputs of the training model, in input order, that the state holds
  // and no gradient trains (running statistics excluded).
  const std::vector<std::string>& frozen_parameter_names() const { return frozen_; }
  // The inputs a train_step (training) or eval_step feed must hold, parameters excluded.
  std::vector<std::string> input_names(bool training) const;
  // The outputs train_step (training) or eval_step return, in order.
  std::vector<std::string> output_names(bool training) const;
  // The state the Module reads its parameters from (the one given to the constructor).
  CheckpointState& state() { return *state_; }
  // Whether gradients are averaged across the ranks of distributed::world().
  bool data_parallel() const { return data_parallel_; }

  // Writes the eval model with the state's parameters as initializers, reduced to the nodes that
  // compute `output_names` (values of the eval model with a known type; loss nodes and inputs
  // such as labels drop out when no output needs them). The file runs in any ONNX runtime. No
  // names: those the eval model lists in its metadata entry kInferenceOutputsMetadata (one a
  // line; generate_artifacts records the base model's outputs there). Throws InvalidArgument
  // when the Module has no eval model, for an empty or unknown output name, for no names where
  // the eval model records none, or when the file cannot be written.
  void export_model_for_inferencing(const std::string& path,
                                    const std::vector<std::string>& output_names) const;

 private:
  friend class Optimizer;
  bool is_parameter(const std::string& name) const;
  // A parameter or a running statistic: a value the state holds, not a feed.
  bool is_state(const std::string& name) const;
  std::map<std::string, Value> with_parameters(const std::map<std::string, Value>& feeds,
                                               const InferenceSession& session,
                                               const std::string& model_path) const;
  CheckpointState* state_;
  std::string training_path_, eval_path_;
  std::unique_ptr<InferenceSession> train_, eval_;
  std::unique_ptr<ir::Model> eval_model_;  // as loaded, for export
  std::vector<std::string> params_;
  // BatchNormalization running statistics: inputs of the training model, which outputs their
  // new values as "<statistic>.new"; kept in the state beside the parameters.
  std::vector<std::string> stats_;
  std::vector<std::string> frozen_;
  // The user's outputs, then "<p>_grad" per parameter, then "<s>.new" per statistic.
  std::vector<std::string> train_outputs_;
  size_t user_output_count_ = 0;
  std::map<std::string, Tensor> gradients_;
  bool reset_grad_ = true;
  bool data_parallel_ = false;
};

// The optimizer model: inputs "graft.lr", "graft.step", "gradient/<p>", the parameters and the
// optimizer state (overridable initializers holding their first-step values); outputs
// "<name>.new" for each parameter and state tensor and "graft.step.new".
class GRAFT_API Optimizer {
 public:
  // Loads the optimizer model for `module`'s parameters; `module` must outlive the Optimizer and
  // stay where it is.
  // The learning rate is the state's "graft.lr" property when it has one (a checkpoint saved with
  // its optimizer state), else `learning_rate`, which is then recorded there. Throws
  // InvalidArgument naming the file when it is missing or invalid, naming the parameter when the
  // model does not update one of the module's parameters, naming the tensor when the state holds
  // optimizer state of another element type or shape than the model's, and for a "graft.lr" or
  // `learning_rate` that is not a finite float or is negative. Everything is checked before the
  // state changes (it takes the learning rate and the optimizer state it holds among the
  // parameters, as TrainingSession's checkpoints keep them), so a refused state is as it was.
  Optimizer(Module& module, const std::string& optimizer_model_path, float learning_rate = 1e-3f,
            SessionOptions options = {});
  Optimizer(Optimizer&&) noexcept;
  ~Optimizer();

  // Applies the module's accumulated gradients: the state's parameters and optimizer state take
  // their updated values and its step advances by one. The gradients stay until the module's
  // next train_step after lazy_reset_grad (onnxruntime's order: train_step, step,
  // lazy_reset_grad). Throws InvalidArgument when the module has no gradients yet; the state is
  // unchanged then.
  void step();
  // Sets the learning rate for the following steps (onnxruntime's SetLearningRate) and records it
  // in the state's "graft.lr" property. Throws InvalidArgument for a negative or non-finite rate.
  void set_learning_rate(float learning_rate);
  float learning_rate() const;
  // The module whose gradients step() applies.
  Module& module() { return *module_; }

 private:
  Module* module_;
  std::string path_;
  std::unique_ptr<InferenceSession> session_;
  std::vector<std::string> outputs_;  // the "<name>.new" outputs
  float learning_rate_;
};

// onnxruntime's linear schedule: the learning rate rises linearly from 0 to `initial_lr` over
// `warmup_step_count` optimizer steps, then falls linearly to 0 at `total_step_count`.
class GRAFT_API LinearLRScheduler {
 public:
  // Sets the optimizer's rate to the schedule's value at the state's current step (0 at step 0
  // with a warmup, as onnxruntime); `optimizer` must outlive the scheduler. Throws
  // InvalidArgument unless 0 <= warmup_step_count <= total_step_count and initial_lr is finite
  // and not negative.
  LinearLRScheduler(Optimizer& optimizer, int64_t warmup_step_count, int64_t total_step_count,
                    float initial_lr);
  // Sets the optimizer's rate for the state's current step; call it after each Optimizer::step.
  void step();
  // The multiplier of initial_lr after `step` optimizer steps.
  double factor(int64_t step) const;
  int64_t warmup_step_count() const { return warmup_; }
  int64_t total_step_count() const { return total_; }
  float initial_lr() const { return initial_lr_; }

 private:
  Optimizer* optimizer_;
  int64_t warmup_, total_;
  float initial_lr_;
};

// Adds `addend` into `sum` element by element (the gradient accumulation of train_step). Throws
// InvalidArgument when the shapes or element types differ or the type is not floating point.
GRAFT_API void accumulate(Tensor& sum, const Tensor& addend);

// `forward` with `trained` replacing the initializers of the same names (which stop being graph
// inputs), reduced to the nodes, inputs and initializers that compute `output_names`. Throws
// InvalidArgument for an empty or unknown output name (one that is neither a graph output nor a
// value of known type).
GRAFT_API ir::Model inference_model(const ir::Model& forward,
                                    const std::map<std::string, Tensor>& trained,
                                    const std::vector<std::string>& output_names);

// BatchNormalization running statistics, which are buffers, as PyTorch calls them, not
// parameters: no gradient trains them.
// The running means and variances (inputs 3 and 4) held as initializers of `m`.
GRAFT_API std::set<std::string> batch_norm_statistics(const ir::Model& m);
// Those a step updates: of nodes in training mode (opset 14+ training_mode=1), whose outputs 1
// and 2 are the new running mean and variance. In node order.
GRAFT_API std::vector<std::string> updated_statistics(const ir::Model& m);
// Makes `stats` (updated_statistics of `m`) state of a step: each becomes a graph input (its
// initializer the first value) and the running value its BatchNormalization computes becomes
// the graph output "<stat>.new". With `data_parallel` the ranks' values are averaged first (one
// com.graft.AllReduce), so every rank keeps the same statistics, as the parameters.
GRAFT_API void expose_running_statistics(ir::Model& m, const std::vector<std::string>& stats,
                                         bool data_parallel);
// `m` as it runs for inference: BatchNormalization in training mode normalizes with its running
// statistics instead (training_mode=0, no running outputs), as torch's module.eval().
GRAFT_API ir::Model in_inference_mode(ir::Model m);
// Stores the new values of `stats`, outputs first, first + 1, ... of a run, in `state`; with
// `data_parallel` and several ranks, averaged across them first.
GRAFT_API void store_running_statistics(const std::vector<std::string>& stats,
                                        const std::vector<Value>& outs, size_t first,
                                        bool data_parallel, std::map<std::string, Tensor>& state);

}  // namespace training
}  // namespace graft
