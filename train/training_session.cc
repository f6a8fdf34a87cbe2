#include "train/training_session.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <functional>
#include <set>

#include "autodiff/gradient.h"
#include "distributed/communicator.h"
#include "exec/generator.h"
#include "exec/partition.h"
#include "exec/plan.h"
#include "exec/provider.h"
#include "exec/tensor_proto.h"
#include "ir/model.h"
#include "ir/names.h"
#include "ir/serialize.h"
#include "ir/transforms/inline_functions.h"
#include "ir/transforms/optimize.h"
#include "onnx/onnx_pb.h"
#include "optim/update_ops.h"
#include "train/checkpoint.h"
#include "train/training_api.h"

namespace graft {
namespace {

// The forward model with each parameter also a graph input, so runs can feed current values.
ir::Model with_parameter_inputs(const ir::Model& forward, const std::vector<std::string>& params) {
  ir::Model m = forward.clone();
  for (const auto& p : params) {
    if (m.graph.is_graph_input(p)) continue;
    m.graph.inputs.push_back({p, ir::tensor_type(*m.graph.find_initializer(p)), ""});
  }
  return m;
}

// `model` run by a session whose caller supplies the tensors named in `state` at every run
// (InferenceSession::run_donating): their initializers are dropped, the caller holds the values.
std::unique_ptr<InferenceSession> state_session(ir::Model model, const SessionOptions& options,
                                                const std::map<std::string, Tensor>& state,
                                                const std::vector<std::string>& providers) {
  std::erase_if(model.graph.initializers,
                [&](const auto& t) { return state.count(t->name()) > 0; });
  return std::make_unique<InferenceSession>(std::move(model), options, providers);
}

std::map<std::string, Tensor> on_host(const std::map<std::string, Tensor>& state) {
  std::map<std::string, Tensor> host;
  for (const auto& [name, t] : state) host[name] = t.to_host();
  return host;
}

std::string describe(const Tensor& t) {
  return std::string(dtype_name(t.dtype())) + " " + shape_to_string(t.shape());
}

}  // namespace

TrainingSession::TrainingSession(const ir::Model& forward, TrainingOptions options)
    : loss_(options.loss), learning_rate_(options.learning_rate) {
  params_ = options.params;
  const std::set<std::string> statistics = training::batch_norm_statistics(forward);
  if (params_.empty()) {
    for (const auto& t : forward.graph.initializers) {
      if ((t->data_type() == onnx::TensorProto::FLOAT ||
           t->data_type() == onnx::TensorProto::DOUBLE) &&
          !statistics.count(t->name())) {
        params_.push_back(t->name());
      }
    }
  }
  for (const auto& p : params_) {
    if (statistics.count(p)) {
      throw InvalidArgument("'" + p +
                            "' is a running statistic of a BatchNormalization, not a parameter: "
                            "training updates it from the batches");
    }
  }
  stats_ = training::updated_statistics(forward);
  mixed_ = options.mixed_precision;
  const bool mixed = mixed_.compute != DType::Undefined;
  scaled_ = mixed && mixed_.scaled.value_or(mixed_.compute == DType::Float16);
  loss_scale_ = scaled_ ? mixed_.init_scale : 1.0f;
  ir::Model source = mixed ? training::autocast(forward, mixed_.compute) : forward.clone();
  const std::string differentiated = scaled_ ? training::scale_loss(source, loss_) : loss_;
  ir::Model grads = autodiff::build_gradient_graph(source, differentiated, params_);
  if (scaled_) training::unscale_gradients(grads, params_);
  distributed::Communicator& world = distributed::world();
  data_parallel_ = options.data_parallel.value_or(world.size() > 1);
  data_parallel_options_ = options.data_parallel_options;
  optimizer_ = options.optimizer;
  if (data_parallel_) world_size_ = world.size();
  if (options.zero_stage != 0 && options.zero_stage != 1) {
    throw InvalidArgument("zero_stage must be 0 or 1, got " + std::to_string(options.zero_stage));
  }
  if (options.zero_stage == 1) {
    if (!data_parallel_) throw InvalidArgument("zero_stage 1 needs data-parallel training");
    zero_owners_ = distributed::partition_parameters(forward, params_, world_size_);
  }
  if (world_size_ > 1) check_ranks_agree(forward);
  ir::Model step = build_update(grads);
  training::expose_running_statistics(step, stats_, data_parallel_);
  if (mixed) training::guard_update(step, params_);
  // Initial state: the parameters and the optimizer's zero-initialized slots.
  for (const auto& t : step.graph.initializers) {
    const bool is_param = std::find(params_.begin(), params_.end(), t->name()) != params_.end();
    const bool is_slot = std::any_of(
        step.graph.outputs.begin(), step.graph.outputs.end(),
        [&](const ir::ValueInfo& v) { return v.name == t->name() + names::kNewSuffix; });
    if (is_param || is_slot) state_[t->name()] = tensor_from_proto(*t);
  }
  train_outputs_.push_back(loss_);
  for (const auto& o : step.graph.outputs) {
    if (o.name.ends_with(names::kNewSuffix)) train_outputs_.push_back(o.name);
  }
  if (mixed) train_outputs_.push_back(training::kUpdateFinite);
  // Every rank starts from rank 0's parameters and optimizer state (std::map: the same order
  // on every rank). Under ZeRO each rank holds the (zero) state of its own parameters only.
  if (world_size_ > 1) {
    for (auto& [name, t] : state_) {
      const bool is_param = std::find(params_.begin(), params_.end(), name) != params_.end();
      if (is_param || zero_owners_.empty()) world.broadcast(t.raw(), t.size(), t.dtype(), 0);
    }
  }
  forward_ = std::make_unique<ir::Model>(forward.clone());
  session_options_ = options.session;
  providers_ = options.providers;
  train_ = state_session(std::move(step), options.session, state_, providers_);
  // optimized_model_filepath and profiling are the training step's; the other sessions have
  // neither.
  session_options_.optimized_model_filepath.clear();
  session_options_.enable_profiling = false;
  std::vector<std::string> fed = params_;
  fed.insert(fed.end(), stats_.begin(), stats_.end());
  eval_ = std::make_unique<InferenceSession>(
      training::in_inference_mode(with_parameter_inputs(forward, fed)), session_options_,
      providers_);
}

TrainingSession::~TrainingSession() = default;

void TrainingSession::check_ranks_agree(const ir::Model& forward) const {
  // Ranks that disagree would exchange buffers of different layouts; compare a digest of what
  // shapes the collectives first.
  std::string what = loss_ + "|" + std::to_string(static_cast<int>(optimizer_.kind)) + "|" +
                     std::to_string(zero_owners_.size()) + "|" +
                     std::to_string(data_parallel_options_.bucket_bytes);
  for (const auto& p : params_) {
    what += "|" + p;
    if (const onnx::TensorProto* t = forward.graph.find_initializer(p)) {
      what += ":" + std::to_string(t->data_type());
      for (int64_t d : t->dims()) what += "," + std::to_string(d);
    }
  }
  distributed::Communicator& world = distributed::world();
  const int64_t digest = static_cast<int64_t>(std::hash<std::string>{}(what));
  std::vector<int64_t> all(static_cast<size_t>(world.size()));
  world.all_gather(&digest, all.data(), 1, DType::Int64);
  for (int r = 0; r < world.size(); ++r) {
    if (all[static_cast<size_t>(r)] != all[0]) {
      throw InvalidArgument("data parallel: rank " + std::to_string(r) +
                            " builds a different training step than rank 0 (parameters, their "
                            "shapes, loss, optimizer, bucket size or ZeRO stage differ); every "
                            "rank must construct its TrainingSession alike");
    }
  }
}

double TrainingSession::train_step(const std::map<std::string, Value>& feeds) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Value> outs = run_step(*train_, train_outputs_, feeds);
  return outs[0].tensor().to_host().scalar_as_double(0);
}

std::vector<Value> TrainingSession::run_step(InferenceSession& session,
                                             const std::vector<std::string>& outputs,
                                             std::map<std::string, Value> feeds) {
  Tensor lr(DType::Float, {});
  lr.data<float>()[0] = learning_rate_;
  Tensor step(DType::Int64, {});
  step.data<int64_t>()[0] = step_;
  feeds[names::kLearningRate] = lr;
  feeds[names::kStep] = step;
  if (scaled_ && &session == train_.get()) {
    Tensor scale(DType::Float, {});
    scale.data<float>()[0] = loss_scale_;
    feeds[training::kLossScale] = scale;
  }
  if (world_size_ > 1) distributed::world().set_step(step_);
  // The state stays where the step leaves it (a GPU's memory) for the next step to take.
  RunOptions options;
  options.outputs_on_device = true;
  std::vector<Value> outs = session.run_donating(outputs, feeds, state_, options);
  // The run took the state; every tensor of it comes back among the ".new" outputs.
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string& name = outputs[i];
    if (!name.ends_with(names::kNewSuffix)) continue;
    const std::string base = name.substr(0, name.size() - std::strlen(names::kNewSuffix));
    if (base == names::kStep) {
      step_ = outs[i].tensor().to_host().scalar_as_int(0);
    } else {
      state_[base] = outs[i].tensor();
    }
  }
  if (!outputs.empty() && outputs.back() == training::kUpdateFinite) update_loss_scale(outs.back());
  return outs;
}

void TrainingSession::update_loss_scale(const Value& finite) {
  // torch.amp.GradScaler's rule: back off at once after an overflow, grow after a run of
  // finite steps. Unscaled (bfloat16) training only counts the skipped steps.
  if (finite.tensor().to_host().scalar_as_int(0) == 0) {
    ++skipped_steps_;
    good_steps_ = 0;
    if (scaled_) loss_scale_ *= mixed_.backoff_factor;
    return;
  }
  if (scaled_ && ++good_steps_ >= mixed_.growth_interval) {
    loss_scale_ *= mixed_.growth_factor;
    good_steps_ = 0;
  }
}

void TrainingSession::build_split_sessions() {
  if (mixed_.compute != DType::Undefined) {
    throw NotImplemented(
        "mixed precision trains through train_step; forward_backward and optimizer_step run in "
        "float32 only");
  }
  if (grad_) return;
  ir::Model gradients =
      autodiff::build_gradient_graph(with_parameter_inputs(*forward_, params_), loss_, params_);
  // Averaged across ranks in forward_backward when data parallel.
  training::expose_running_statistics(gradients, stats_, false);
  grad_ = std::make_unique<InferenceSession>(std::move(gradients), session_options_, providers_);
  // The update alone: a model whose "gradients" are inputs, then the same optimizer nodes.
  ir::Model m = optim::gradients_as_inputs(*forward_, params_);
  update_ = state_session(build_update(m), session_options_, state_, providers_);
}

ir::Model TrainingSession::build_update(const ir::Model& gradients) const {
  if (zero_owners_.empty()) {
    ir::Model step = optim::add_optimizer(gradients, params_, optimizer_);
    if (data_parallel_) distributed::add_gradient_all_reduce(step, params_, data_parallel_options_);
    return step;
  }
  // ZeRO-1: this rank's update covers its own parameters; clipping, which needs the norm over
  // all gradients, moves out of the update node to after the all-reduce.
  const int rank = distributed::world().rank();
  std::vector<std::string> owned;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (zero_owners_[i] == rank) owned.push_back(params_[i]);
  }
  optim::OptimizerConfig config = optimizer_;
  config.max_grad_norm = 0.0f;
  ir::Model step = optim::add_optimizer(gradients, owned, config);
  distributed::add_gradient_all_reduce(step, params_, data_parallel_options_);
  if (optimizer_.max_grad_norm > 0)
    distributed::add_gradient_clipping(step, params_, optimizer_.max_grad_norm);
  distributed::add_parameter_broadcast(step, params_, zero_owners_, rank);
  return step;
}

double TrainingSession::forward_backward(const std::map<std::string, Value>& feeds) {
  std::lock_guard<std::mutex> lock(mutex_);
  build_split_sessions();
  std::map<std::string, Value> all = feeds;
  for (const auto& p : params_) all[p] = state_.at(p);
  for (const auto& s : stats_) all[s] = state_.at(s);
  std::vector<std::string> wanted = {loss_};
  for (const auto& p : params_) wanted.push_back(p + names::kGradSuffix);
  for (const auto& s : stats_) wanted.push_back(s + names::kNewSuffix);
  std::vector<Value> outs = grad_->run(wanted, all);
  training::store_running_statistics(stats_, outs, 1 + params_.size(), data_parallel_, state_);
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& g = outs[i + 1].tensor();
    auto it = accumulated_.find(params_[i]);
    if (reset_grad_ || it == accumulated_.end()) {
      accumulated_[params_[i]] = g.clone();
      continue;
    }
    training::accumulate(it->second, g);
  }
  reset_grad_ = false;
  return outs[0].tensor().scalar_as_double(0);
}

void TrainingSession::optimizer_step() {
  std::lock_guard<std::mutex> lock(mutex_);
  build_split_sessions();
  if (accumulated_.empty())
    throw InvalidArgument("optimizer_step: no gradients yet (call forward_backward first)");
  std::map<std::string, Value> feeds;
  for (const auto& [name, g] : accumulated_) feeds[names::kGradientPrefix + name] = g;
  std::vector<std::string> wanted;
  for (const auto& o : update_->outputs()) {
    if (o.name.ends_with(names::kNewSuffix)) wanted.push_back(o.name);
  }
  run_step(*update_, wanted, std::move(feeds));
}

void TrainingSession::lazy_reset_grad() {
  std::lock_guard<std::mutex> lock(mutex_);
  reset_grad_ = true;
}

std::vector<Value> TrainingSession::eval_step(const std::map<std::string, Value>& feeds) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::map<std::string, Value> all = feeds;
  for (const auto& p : params_) all[p] = state_.at(p);
  for (const auto& s : stats_) all[s] = state_.at(s);
  return eval_->run({}, all);
}

float TrainingSession::loss_scale() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return loss_scale_;
}

int64_t TrainingSession::skipped_steps() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return skipped_steps_;
}

float TrainingSession::learning_rate() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return learning_rate_;
}

void TrainingSession::set_learning_rate(float lr) {
  std::lock_guard<std::mutex> lock(mutex_);
  learning_rate_ = lr;
}

int64_t TrainingSession::step() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return step_;
}

std::map<std::string, Tensor> TrainingSession::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

std::map<std::string, Tensor> TrainingSession::host_state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return on_host(state_);
}

void TrainingSession::save_checkpoint(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Checkpoint c;
  c.tensors = on_host(state_);
  // ZeRO: each rank holds its own parameters' optimizer state; rank 0 collects it all, slot by
  // slot from each owner.
  if (!zero_owners_.empty() && world_size_ > 1) {
    distributed::Communicator& world = distributed::world();
    for (size_t i = 0; i < params_.size(); ++i) {
      const Tensor& p = state_.at(params_[i]);
      for (const auto& suffix : slot_suffixes()) {
        const std::string name = params_[i] + suffix;
        Tensor t =
            zero_owners_[i] == world.rank() ? c.tensors.at(name) : Tensor(p.dtype(), p.shape());
        world.broadcast(t.raw(), t.size(), t.dtype(), zero_owners_[i]);
        c.tensors[name] = t;
      }
    }
  }
  c.step = step_;
  c.properties[names::kLearningRate] = format_float(learning_rate_);
  // The default generator drives unseeded Dropout: a resumed run must draw the same masks.
  c.properties[names::kRngProperty] = default_generator().state();
  c.properties[names::kWorldSizeProperty] = std::to_string(world_size_);
  // Data-parallel ranks hold the same state: rank 0 writes it, the others wait until it has.
  save_checkpoint_on_rank0(c, path, world_size_);
}

std::vector<std::string> TrainingSession::slot_suffixes() const {
  const std::string kind = optim::kind_name(optimizer_.kind);
  std::vector<std::string> out;
  for (const auto& slot : optim::update_op(optimizer_).slots)
    out.push_back("." + kind + "." + slot);
  return out;
}

void TrainingSession::load_checkpoint(const std::string& path) {
  // Read and parsed before the lock is taken, so steps go on meanwhile.
  Checkpoint c = graft::load_checkpoint(path);
  const std::string where = "checkpoint '" + path + "'";
  std::lock_guard<std::mutex> lock(mutex_);
  // Everything is checked before anything changes: a refused checkpoint leaves the session as
  // it was. Checkpoints from before the world size was recorded come from single-process runs.
  int saved_world = 1;
  if (auto it = c.properties.find(names::kWorldSizeProperty); it != c.properties.end()) {
    const std::string& text = it->second;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), saved_world);
    if (ec != std::errc() || end != text.data() + text.size() || saved_world < 1) {
      throw InvalidArgument(where + ": property '" + names::kWorldSizeProperty + "' holds '" +
                            text + "', which is not a rank count");
    }
  }
  if (saved_world != world_size_) {
    throw InvalidArgument(where + " was written by a run of " + std::to_string(saved_world) +
                          " data-parallel rank(s); this one has " + std::to_string(world_size_) +
                          ": resume with the same world size (mpirun -np " +
                          std::to_string(saved_world) + ")");
  }
  if (c.step < 0) {
    throw InvalidArgument(where + ": the step counter is " + std::to_string(c.step) +
                          ", which is negative");
  }
  for (const auto& [name, t] : state_) {
    auto it = c.tensors.find(name);
    if (it == c.tensors.end()) throw InvalidArgument(where + " has no tensor '" + name + "'");
    if (it->second.shape() != t.shape() || it->second.dtype() != t.dtype()) {
      throw InvalidArgument(where + ": tensor '" + name + "' is " + describe(it->second) +
                            ", the session holds " + describe(t));
    }
  }
  float learning_rate = learning_rate_;
  if (auto it = c.properties.find(names::kLearningRate); it != c.properties.end()) {
    learning_rate = parse_float(it->second, where + ": property '" + names::kLearningRate + "'");
  }
  auto rng = c.properties.find(names::kRngProperty);
  if (rng != c.properties.end()) {
    try {
      Generator().set_state(rng->second);
    } catch (const std::exception& e) {
      throw InvalidArgument(where + ": property '" + names::kRngProperty + "': " + e.what());
    }
  }
  for (auto& [name, t] : state_) t = c.tensors.at(name);
  step_ = c.step;
  learning_rate_ = learning_rate;
  if (rng != c.properties.end()) default_generator().set_state(rng->second);
}

std::string TrainingSession::end_profiling() {
  std::lock_guard<std::mutex> lock(mutex_);
  return train_->end_profiling();
}

void TrainingSession::export_model_for_inferencing(const std::string& path,
                                                   const std::vector<std::string>& outputs) const {
  std::lock_guard<std::mutex> lock(mutex_);
  ir::save_model(
      training::in_inference_mode(training::inference_model(*forward_, on_host(state_), outputs)),
      path);
}

}  // namespace graft
