// TrainingSession: a forward model turned into a training step (gradients, then an optimizer
// update), run with parameters, optimizer state and the step counter kept between steps. The
// state is handed to each step's run, so the optimizer updates its buffers in place.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "distributed/data_parallel.h"
#include "exec/session.h"
#include "optim/optimizer.h"
#include "train/mixed_precision.h"

namespace graft {

struct TrainingOptions {
  std::string loss;  // a scalar (or summed) output of the forward model
  // Empty: every floating-point initializer but BatchNormalization running statistics.
  std::vector<std::string> params;
  optim::OptimizerConfig optimizer;
  float learning_rate = 1e-3f;
  SessionOptions session;
  // Data-parallel training (distributed/data_parallel.h): gradients averaged across the ranks of
  // distributed::world() before the update, initial state broadcast from rank 0, checkpoints
  // written by rank 0 only. Unset: on when the world has more than one rank. On with one rank,
  // the graph still holds the (then copying) all-reduce nodes.
  std::optional<bool> data_parallel;
  distributed::DataParallelOptions data_parallel_options;
  // 1: ZeRO stage 1 (needs data-parallel training): each rank updates and keeps the optimizer
  // state of its share of the parameters (distributed::partition_parameters), then broadcasts
  // them; state() holds the parameters and this rank's share of the optimizer state.
  int zero_stage = 0;
  // Execution providers in preference order, as InferenceSession's; empty: default_providers().
  // With CUDAExecutionProvider first, the collectives of data-parallel training run over NCCL
  // (the gradients are copied to the device and back).
  std::vector<std::string> providers;
  // Mixed precision (train/mixed_precision.h): products in float16 or bfloat16 from float32
  // master weights, with a dynamic loss scale for float16. train_step only.
  training::MixedPrecision mixed_precision;
};

// Threads: one session's calls are serialized. Every member function below that reads or
// changes the state (steps, the learning rate and step counter, state(), checkpoints, export,
// profiling) holds the session's lock while it runs, so a call from a second thread waits for
// the one running and two threads' steps all count, one after the other, as if made in some
// order by one thread. parameters(), running_statistics(), data_parallel(), world_size() and
// zero_stage() are fixed when the session is built and take no lock. (An InferenceSession's run
// is safe from many threads at once; a training step is not, since it updates the state.)
class GRAFT_API TrainingSession {
 public:
  // Builds the gradient and optimizer graphs (ONNX nodes) and the sessions that run them.
  // Throws like build_gradient_graph / InferenceSession for models it cannot train. Training
  // data-parallel across several ranks, every rank must construct it alike (it broadcasts rank
  // 0's parameters and optimizer state, a collective).
  TrainingSession(const ir::Model& forward, TrainingOptions options);
  ~TrainingSession();

  // Forward, backward and one optimizer update; returns the loss.
  double train_step(const std::map<std::string, Value>& feeds);
  // onnxruntime's split step: forward and backward, adding the gradients into accumulators
  // (reset first when lazy_reset_grad was called); returns the loss. optimizer_step then applies
  // the accumulated gradients.
  double forward_backward(const std::map<std::string, Value>& feeds);
  void optimizer_step();
  void lazy_reset_grad();
  // The forward model's outputs with the current parameters (no update).
  std::vector<Value> eval_step(const std::map<std::string, Value>& feeds);

  // Mixed precision: the loss scale the next step uses, and how many steps were skipped because
  // their update was not finite.
  float loss_scale() const;
  int64_t skipped_steps() const;

  float learning_rate() const;
  void set_learning_rate(float lr);
  int64_t step() const;
  // Parameters and optimizer state by name ("fc.weight", "fc.weight.adamw.m", ...): copies
  // that share the state's buffers, taken between steps. A step updates a tensor in place unless
  // a copy of it (sharing its buffer) is alive elsewhere; the copy then keeps the old values and
  // the state gets a new buffer, so a copy never changes under its holder.
  // Trained on a device, the tensors stay in its memory between steps (Tensor::to_host copies
  // one out; host_state() all of them).
  std::map<std::string, Tensor> state() const;
  std::map<std::string, Tensor> host_state() const;
  const std::vector<std::string>& parameters() const { return params_; }
  // The BatchNormalization running statistics the steps update (those of nodes in training
  // mode), also in state(): buffers, as PyTorch calls them, never among the parameters. Each
  // step moves them towards the batch's statistics by the node's momentum; eval_step and
  // export_model_for_inferencing normalize with them (BatchNormalization in inference mode).
  const std::vector<std::string>& running_statistics() const { return stats_; }

  // Whether gradients are averaged across ranks, and over how many.
  bool data_parallel() const { return data_parallel_; }
  int world_size() const { return world_size_; }
  int zero_stage() const { return zero_owners_.empty() ? 0 : 1; }

  // Parameters, optimizer state, step, learning rate, the default random generator's state
  // (exec/generator.h) and the world size, written atomically. Data-parallel over several
  // ranks, rank 0 writes and every rank waits for it (a collective: all ranks call it).
  void save_checkpoint(const std::string& path) const;
  // Restores what save_checkpoint wrote, the random generator included. All or nothing: the file
  // is read and every part of it checked first (each tensor the session holds present, with its
  // element type and shape; the step not negative; "graft.lr" a float; "graft.rng" a generator
  // state; the world size this run's), and only then does the session take it. Throws
  // InvalidArgument naming the file and the tensor or property at fault (train/checkpoint.h
  // lists the damage a file may have), and the session, its generator included, is then as it
  // was. Tensors of the file the session does not hold are ignored. Every rank reads `path`.
  void load_checkpoint(const std::string& path);
  // Writes the forward model with the trained parameters, reduced to what computes `outputs`
  // (loss nodes and inputs such as labels drop out when no output needs them).
  void export_model_for_inferencing(const std::string& path,
                                    const std::vector<std::string>& outputs) const;

  // With SessionOptions::enable_profiling: writes the timing of every node that train_step ran
  // (Chrome trace-event JSON, "<profile_file_prefix>_<timestamp>.json") and returns its path;
  // "" when profiling is off. Profiling stops, as InferenceSession::end_profiling.
  std::string end_profiling();

 private:
  // The training step, and the split-step update below, run with the state donated
  // (InferenceSession::run_donating) so that the optimizer's kernel updates it in place.
  // Held by every public member function that reads or writes what follows; the private ones
  // run with it held.
  mutable std::mutex mutex_;
  std::unique_ptr<InferenceSession> train_;
  std::unique_ptr<InferenceSession> eval_;
  std::unique_ptr<ir::Model> forward_;
  // Split-step sessions, built on first use: gradients only, and the update from given gradients.
  std::unique_ptr<InferenceSession> grad_;
  std::unique_ptr<InferenceSession> update_;
  std::map<std::string, Tensor> accumulated_;
  bool reset_grad_ = true;
  optim::OptimizerConfig optimizer_;
  SessionOptions session_options_;
  std::vector<std::string> providers_;
  void build_split_sessions();
  // The optimizer update over `gradients` (a model outputting "<p>_grad"), with the
  // data-parallel all-reduce and ZeRO-1 broadcasts when they are on.
  ir::Model build_update(const ir::Model& gradients) const;
  // Throws InvalidArgument on every rank when the ranks' sessions differ in what decides the
  // collectives (an all-gather of a digest).
  void check_ranks_agree(const ir::Model& forward) const;
  // The optimizer's state names after the parameter name (".adamw.m", ".adamw.v").
  std::vector<std::string> slot_suffixes() const;
  // Runs `session` with `feeds` plus the learning rate, the step and the state, then takes the
  // new state and step from its ".new" outputs. Returns the outputs named `outputs`.
  std::vector<Value> run_step(InferenceSession& session, const std::vector<std::string>& outputs,
                              std::map<std::string, Value> feeds);
  // After a mixed-precision step: the scale and counters from whether its update was finite.
  void update_loss_scale(const Value& finite);
  std::map<std::string, Tensor> state_;
  std::vector<std::string> params_;
  std::vector<std::string> stats_;
  std::vector<std::string> train_outputs_;  // loss, then "<state>.new" and "graft.step.new"
  std::string loss_;
  float learning_rate_;
  int64_t step_ = 0;
  bool data_parallel_ = false;
  distributed::DataParallelOptions data_parallel_options_;
  int world_size_ = 1;  // ranks the gradients are averaged over
  training::MixedPrecision mixed_;
  bool scaled_ = false;  // the step takes the loss scale
  float loss_scale_ = 1.0f;
  int good_steps_ = 0;  // finite steps since the scale last changed
  int64_t skipped_steps_ = 0;
  std::vector<int> zero_owners_;  // ZeRO-1: the rank updating each parameter; empty: off
};

}  // namespace graft
