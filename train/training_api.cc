#include "train/training_api.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <type_traits>

#include "distributed/communicator.h"
#include "distributed/data_parallel.h"
#include "exec/generator.h"
#include "exec/tensor_proto.h"
#include "ir/model.h"
#include "ir/names.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "train/checkpoint.h"

namespace graft::training {
namespace {

std::string strip(const std::string& s, const std::string& suffix) {
  return s.substr(0, s.size() - suffix.size());
}

std::string describe(const Tensor& t) {
  return std::string(dtype_name(t.dtype())) + " " + shape_to_string(t.shape());
}

// Loads `path` for a session, naming the file and its role when it is missing.
ir::Model load_artifact(const std::string& path, const std::string& role) {
  if (path.empty()) throw InvalidArgument(role + ": no file given");
  if (!std::filesystem::is_regular_file(path))
    throw InvalidArgument(role + " '" + path + "' does not exist");
  return ir::load_model(path);
}

// The input or overridable initializer `name` of `session`; null when it has none.
const IOInfo* find_input(const InferenceSession& session, const std::string& name) {
  for (const auto* list : {&session.inputs(), &session.overridable_initializers()}) {
    for (const IOInfo& info : *list) {
      if (info.name == name) return &info;
    }
  }
  return nullptr;
}

// What is wrong with feeding `t` as input `name` (an input or an overridable initializer) of
// `session` (exec's feed check), or "is not an input ..."; empty when nothing.
std::string mismatch(const InferenceSession& session, const std::string& name, const Tensor& t) {
  const IOInfo* info = find_input(session, name);
  return info ? feed_mismatch(*info, Value(t))
              : "is not an input of the model, so it cannot be fed";
}

// "checkpoint 'path'" for messages, or "checkpoint state" for one not read from a file.
std::string checkpoint_name(const std::string& path) {
  return path.empty() ? "checkpoint state" : "checkpoint '" + path + "'";
}

// `rate` unless it is negative or not finite; `what` names it in the error.
float checked_rate(float rate, const std::string& what) {
  if (!std::isfinite(rate) || rate < 0) {
    throw InvalidArgument(what + ": the learning rate must be finite and not negative, got " +
                          format_float(rate));
  }
  return rate;
}

// The learning rate the property text holds, from the state or file called `where`.
float rate_property(const std::string& text, const std::string& where) {
  const std::string what = where + ": property '" + names::kLearningRate + "'";
  return checked_rate(parse_float(text, what), what);
}

// BatchNormalization that normalizes with batch statistics and outputs new running ones.
bool training_mode_batch_norm(const ir::Model& m, const ir::Node& n) {
  if (n.op_type != "BatchNormalization" || !n.domain.empty() || m.opset("") < 14) return false;
  const ir::Attribute* mode = n.find_attr("training_mode");
  return mode && mode->proto->i() != 0 && n.inputs.size() >= 5;
}

}  // namespace

ArtifactPaths ArtifactPaths::in_directory(const std::string& dir) {
  const std::filesystem::path d(dir);
  return {(d / "training_model.onnx").string(), (d / "eval_model.onnx").string(),
          (d / "optimizer_model.onnx").string(), (d / "checkpoint").string()};
}

// --- CheckpointState ---

CheckpointState::CheckpointState(std::map<std::string, Tensor> parameters, int64_t step,
                                 const std::map<std::string, std::string>& properties)
    : parameters_(std::move(parameters)), step_(step) {
  for (const auto& [name, value] : properties) add_property(name, value);
}

CheckpointState CheckpointState::load(const std::string& path) {
  Checkpoint c = load_checkpoint(path);
  const std::string where = checkpoint_name(path);
  // Everything is checked before the default generator changes, the one thing outside the new
  // state that loading writes.
  if (c.step < 0) {
    throw InvalidArgument(where + ": the step counter is " + std::to_string(c.step) +
                          ", which is negative");
  }
  if (auto it = c.properties.find(names::kLearningRate); it != c.properties.end())
    rate_property(it->second, where);
  std::set<std::string> optimizer_names;
  if (auto it = c.properties.find(names::kOptimizerStateProperty); it != c.properties.end()) {
    std::istringstream lines(it->second);
    for (std::string line; std::getline(lines, line);) {
      if (!c.tensors.count(line)) {
        throw InvalidArgument(where + ": property '" + names::kOptimizerStateProperty +
                              "' names '" + line + "', a tensor the file does not hold");
      }
      optimizer_names.insert(line);
    }
    c.properties.erase(it);
  }
  std::optional<std::string> rng;
  if (auto it = c.properties.find(names::kRngProperty); it != c.properties.end()) {
    try {
      Generator().set_state(it->second);
    } catch (const std::exception& e) {
      throw InvalidArgument(where + ": property '" + names::kRngProperty + "': " + e.what());
    }
    rng = it->second;
    c.properties.erase(it);
  }
  CheckpointState state;
  for (auto& [name, t] : c.tensors) {
    (optimizer_names.count(name) ? state.optimizer_state_ : state.parameters_)[name] = t;
  }
  state.step_ = c.step;
  state.properties_ = std::move(c.properties);
  state.path_ = path;
  // The default generator drives unseeded Dropout: loading restores it, so a resumed run draws
  // the masks an uninterrupted one would.
  if (rng) default_generator().set_state(*rng);
  return state;
}

void CheckpointState::save(const std::string& path, bool include_optimizer_state) const {
  std::lock_guard<std::mutex> lock(*mutex_);
  Checkpoint c;
  c.tensors = parameters_;
  c.properties = properties_;
  if (include_optimizer_state) {
    std::string names;
    for (const auto& [name, t] : optimizer_state_) {
      c.tensors[name] = t;
      names += name + "\n";
    }
    if (!names.empty()) c.properties[names::kOptimizerStateProperty] = names;
    c.step = step_;
  } else {
    c.properties.erase(names::kLearningRate);
  }
  c.properties[names::kRngProperty] = default_generator().state();
  // Data-parallel ranks hold the same state: rank 0 writes it, the others wait until it has.
  save_checkpoint_on_rank0(c, path, distributed::world().size());
}

const Tensor& CheckpointState::held_parameter(const std::string& name) const {
  auto it = parameters_.find(name);
  if (it == parameters_.end()) {
    throw InvalidArgument(checkpoint_name(path_) + " has no parameter '" + name + "'");
  }
  return it->second;
}

Tensor CheckpointState::parameter(const std::string& name) const {
  std::lock_guard<std::mutex> lock(*mutex_);
  return held_parameter(name);
}

std::map<std::string, Tensor> CheckpointState::parameters() const {
  std::lock_guard<std::mutex> lock(*mutex_);
  return parameters_;
}

std::map<std::string, Tensor> CheckpointState::optimizer_state() const {
  std::lock_guard<std::mutex> lock(*mutex_);
  return optimizer_state_;
}

int64_t CheckpointState::step() const {
  std::lock_guard<std::mutex> lock(*mutex_);
  return step_;
}

void CheckpointState::update_parameter(const std::string& name, const Tensor& value) {
  std::lock_guard<std::mutex> lock(*mutex_);
  const Tensor& old = held_parameter(name);
  if (old.dtype() != value.dtype() || old.shape() != value.shape()) {
    throw InvalidArgument("update_parameter: parameter '" + name + "' is " + describe(old) +
                          ", the new value is " + describe(value));
  }
  parameters_[name] = value.clone();
}

void CheckpointState::set_tensor(const std::string& name, const Tensor& value) {
  std::lock_guard<std::mutex> lock(*mutex_);
  for (auto* held : {&parameters_, &optimizer_state_}) {
    auto it = held->find(name);
    if (it == held->end()) continue;
    if (it->second.dtype() != value.dtype() || it->second.shape() != value.shape()) {
      throw InvalidArgument("set_tensor: '" + name + "' is " + describe(it->second) +
                            ", the new value is " + describe(value));
    }
    it->second = value.clone();
    return;
  }
  parameters_[name] = value.clone();
}

void CheckpointState::add_property(const std::string& name, const std::string& value) {
  if (name == names::kOptimizerStateProperty || name == names::kRngProperty)
    throw InvalidArgument("property '" + name + "' is reserved for graft's checkpoint format");
  std::lock_guard<std::mutex> lock(*mutex_);
  properties_[name] = value;
}

std::string CheckpointState::property(const std::string& name) const {
  std::lock_guard<std::mutex> lock(*mutex_);
  auto it = properties_.find(name);
  if (it == properties_.end()) {
    throw InvalidArgument(checkpoint_name(path_) + " has no property '" + name + "'");
  }
  return it->second;
}

bool CheckpointState::has_property(const std::string& name) const {
  std::lock_guard<std::mutex> lock(*mutex_);
  return properties_.count(name) != 0;
}

std::map<std::string, std::string> CheckpointState::properties() const {
  std::lock_guard<std::mutex> lock(*mutex_);
  return properties_;
}

std::set<std::string> batch_norm_statistics(const ir::Model& m) {
  std::set<std::string> stats;
  for (const auto& n : m.graph.nodes) {
    if (n->op_type != "BatchNormalization" || !n->domain.empty()) continue;
    for (size_t i = 3; i < 5 && i < n->inputs.size(); ++i) {
      if (m.graph.find_initializer(n->inputs[i]) && !m.graph.is_graph_input(n->inputs[i]))
        stats.insert(n->inputs[i]);
    }
  }
  return stats;
}

std::vector<std::string> updated_statistics(const ir::Model& m) {
  const std::set<std::string> all = batch_norm_statistics(m);
  std::vector<std::string> stats;
  for (const auto& n : m.graph.nodes) {
    if (!training_mode_batch_norm(m, *n)) continue;
    for (size_t i = 3; i < 5; ++i) {
      if (all.count(n->inputs[i]) &&
          std::find(stats.begin(), stats.end(), n->inputs[i]) == stats.end())
        stats.push_back(n->inputs[i]);
    }
  }
  return stats;
}

void expose_running_statistics(ir::Model& m, const std::vector<std::string>& stats,
                               bool data_parallel) {
  if (stats.empty()) return;
  ir::Graph& g = m.graph;
  std::map<std::string, std::string> running;  // statistic -> the value holding its new value
  for (auto& n : g.nodes) {
    if (!training_mode_batch_norm(m, *n)) continue;
    if (n->outputs.size() < 3) n->outputs.resize(3);
    for (size_t i = 3; i < 5; ++i) {
      const std::string& stat = n->inputs[i];
      if (std::find(stats.begin(), stats.end(), stat) == stats.end() || running.count(stat))
        continue;
      std::string& out = n->outputs[i - 2];
      if (out.empty()) out = stat + names::kNewSuffix + "/running";
      running[stat] = out;
    }
  }
  std::vector<std::string> local, fresh;
  for (const auto& stat : stats) {
    const onnx::TensorProto* t = g.find_initializer(stat);
    auto type = ir::tensor_type(*t);
    if (!g.is_graph_input(stat)) g.inputs.push_back({stat, type, ""});
    g.outputs.push_back({stat + names::kNewSuffix, type, ""});
    local.push_back(running.at(stat));
    fresh.push_back(stat + names::kNewSuffix);
  }
  ir::Node node;
  if (data_parallel) {
    node.op_type = "AllReduce";
    node.domain = names::kDomain;
    node.name = "running_statistics/AllReduce";
    node.attributes.push_back(ir::string_attribute("reduction", "average"));
    node.inputs = local;
    node.outputs = fresh;
    g.add_node(std::move(node));
    if (!m.opset_imports.count(names::kDomain)) m.opset_imports[names::kDomain] = 1;
    return;
  }
  for (size_t i = 0; i < local.size(); ++i) {
    ir::Node id;
    id.op_type = "Identity";
    id.name = fresh[i] + "/Identity";
    id.inputs = {local[i]};
    id.outputs = {fresh[i]};
    g.add_node(std::move(id));
  }
}

ir::Model in_inference_mode(ir::Model m) {
  for (auto& n : m.graph.nodes) {
    if (!training_mode_batch_norm(m, *n)) continue;
    for (auto& a : n->attributes) {
      if (a.name != "training_mode") continue;
      a.proto = std::make_shared<onnx::AttributeProto>(*a.proto);  // the proto may be shared
      a.proto->set_i(0);
    }
    n->outputs.resize(1);
  }
  return m;
}

void store_running_statistics(const std::vector<std::string>& stats, const std::vector<Value>& outs,
                              size_t first, bool data_parallel,
                              std::map<std::string, Tensor>& state) {
  distributed::Communicator& world = distributed::world();
  for (size_t i = 0; i < stats.size(); ++i) {
    Tensor value = outs[first + i].tensor().clone();
    if (data_parallel && world.size() > 1)
      world.all_reduce(value.raw(), value.size(), value.dtype(), distributed::ReduceOp::Average);
    state[stats[i]] = value;
  }
}

// --- Module ---

Module::Module(CheckpointState& state, const std::string& training_model_path,
               const std::string& eval_model_path, SessionOptions options,
               std::optional<bool> data_parallel,
               const distributed::DataParallelOptions& data_parallel_options)
    : state_(&state), training_path_(training_model_path), eval_path_(eval_model_path) {
  ir::Model training = load_artifact(training_model_path, "training model");
  std::vector<std::string> grad_outputs, stat_outputs;
  for (const auto& o : training.graph.outputs) {
    if (o.name.ends_with(names::kGradSuffix) &&
        (training.graph.is_graph_input(strip(o.name, names::kGradSuffix)) ||
         training.graph.find_initializer(strip(o.name, names::kGradSuffix)))) {
      params_.push_back(strip(o.name, names::kGradSuffix));
      grad_outputs.push_back(o.name);
    } else if (o.name.ends_with(names::kNewSuffix) &&
               training.graph.is_graph_input(strip(o.name, names::kNewSuffix))) {
      stats_.push_back(strip(o.name, names::kNewSuffix));
      stat_outputs.push_back(o.name);
    } else {
      train_outputs_.push_back(o.name);
    }
  }
  if (params_.empty()) {
    throw InvalidArgument("training model '" + training_model_path +
                          "' has no gradient outputs (\"<parameter>_grad\")");
  }
  user_output_count_ = train_outputs_.size();
  train_outputs_.insert(train_outputs_.end(), grad_outputs.begin(), grad_outputs.end());
  train_outputs_.insert(train_outputs_.end(), stat_outputs.begin(), stat_outputs.end());
  distributed::Communicator& world = distributed::world();
  data_parallel_ = data_parallel.value_or(world.size() > 1);
  if (data_parallel_)
    distributed::add_gradient_all_reduce(training, params_, data_parallel_options);
  train_ = std::make_unique<InferenceSession>(std::move(training), options);
  if (!eval_model_path.empty()) {
    eval_model_ = std::make_unique<ir::Model>(load_artifact(eval_model_path, "eval model"));
    eval_ = std::make_unique<InferenceSession>(eval_model_->clone(), options);
  }
  std::lock_guard<std::mutex> lock(*state.mutex_);
  for (const auto& stat : stats_) {
    if (!state.parameters_.count(stat)) {
      throw InvalidArgument(checkpoint_name(state.path_) + " has no '" + stat +
                            "', a running statistic of training model '" + training_model_path +
                            "'");
    }
  }
  for (const auto& p : params_) {
    auto it = state.parameters_.find(p);
    if (it == state.parameters_.end()) {
      throw InvalidArgument(checkpoint_name(state.path_) + " has no parameter '" + p +
                            "', which training model '" + training_model_path + "' trains");
    }
    if (std::string why = mismatch(*train_, p, it->second); !why.empty()) {
      throw InvalidArgument(checkpoint_name(state.path_) + ": parameter '" + p + "' " + why +
                            " (training model '" + training_model_path + "')");
    }
  }
  for (const auto& input : train_->inputs()) {
    auto it = state.parameters_.find(input.name);
    if (it == state.parameters_.end() || is_state(input.name)) continue;
    if (std::string why = mismatch(*train_, input.name, it->second); !why.empty()) {
      throw InvalidArgument(checkpoint_name(state.path_) + ": frozen parameter '" + input.name +
                            "' " + why + " (training model '" + training_model_path + "')");
    }
    frozen_.push_back(input.name);
  }
  // Every rank starts from rank 0's parameters (std::map: the same order on every rank).
  if (data_parallel_ && world.size() > 1) {
    for (const auto& p : params_) {
      Tensor t = state.parameters_.at(p).clone();
      world.broadcast(t.raw(), t.size(), t.dtype(), 0);
      state.parameters_[p] = t;
    }
  }
}

Module::Module(Module&&) noexcept = default;
Module::~Module() = default;

bool Module::is_parameter(const std::string& name) const {
  return std::find(params_.begin(), params_.end(), name) != params_.end();
}

bool Module::is_state(const std::string& name) const {
  return is_parameter(name) || std::find(stats_.begin(), stats_.end(), name) != stats_.end() ||
         std::find(frozen_.begin(), frozen_.end(), name) != frozen_.end();
}

std::map<std::string, Value> Module::with_parameters(const std::map<std::string, Value>& feeds,
                                                     const InferenceSession& session,
                                                     const std::string& model_path) const {
  std::map<std::string, Value> all;
  for (const auto& [name, value] : feeds) {
    if (is_state(name)) {
      const bool stat = std::find(stats_.begin(), stats_.end(), name) != stats_.end();
      throw InvalidArgument("feed '" + name + "' is a " +
                            (is_parameter(name) ? "parameter"
                             : stat             ? "running statistic"
                                                : "frozen parameter") +
                            ": its value comes from the checkpoint state "
                            "(CheckpointState::update_parameter changes it)");
    }
    const auto& inputs = session.inputs();
    const std::string& feed = name;  // a lambda captures it (clang 14 cannot capture a binding)
    if (std::none_of(inputs.begin(), inputs.end(),
                     [&](const IOInfo& i) { return i.name == feed; })) {
      std::string known;
      for (const auto& i : inputs) {
        if (!is_state(i.name)) known += (known.empty() ? "" : ", ") + i.name;
      }
      throw InvalidArgument("feed '" + name + "' is not an input of '" + model_path +
                            "' (its inputs: " + known + ")");
    }
    all[name] = value;
  }
  for (const auto& p : params_) all[p] = state_->held_parameter(p);
  // The eval model reads the statistics too (BatchNormalization in inference mode); they and the
  // frozen parameters may be declared as inputs or as overridable initializers.
  std::vector<std::string> held = stats_;
  held.insert(held.end(), frozen_.begin(), frozen_.end());
  for (const auto& stat : held) {
    for (const auto* list : {&session.inputs(), &session.overridable_initializers()}) {
      if (std::any_of(list->begin(), list->end(), [&](const IOInfo& i) { return i.name == stat; }))
        all[stat] = state_->held_parameter(stat);
    }
  }
  return all;
}

std::vector<Value> Module::train_step(const std::map<std::string, Value>& feeds) {
  std::lock_guard<std::mutex> lock(*state_->mutex_);
  std::vector<Value> outs =
      train_->run(train_outputs_, with_parameters(feeds, *train_, training_path_));
  // The run succeeded, so the buffers change only now: a bad feed leaves them as they were.
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& g = outs[user_output_count_ + i].tensor();
    auto it = gradients_.find(params_[i]);
    if (reset_grad_ || it == gradients_.end()) {
      gradients_[params_[i]] = g.clone();
    } else {
      accumulate(it->second, g);
    }
  }
  reset_grad_ = false;
  store_running_statistics(stats_, outs, user_output_count_ + params_.size(), data_parallel_,
                           state_->parameters_);
  outs.resize(user_output_count_);
  return outs;
}

std::vector<Value> Module::eval_step(const std::map<std::string, Value>& feeds) {
  if (!eval_) throw InvalidArgument("eval_step: the Module was created without an eval model");
  std::lock_guard<std::mutex> lock(*state_->mutex_);
  return eval_->run({}, with_parameters(feeds, *eval_, eval_path_));
}

void Module::lazy_reset_grad() {
  std::lock_guard<std::mutex> lock(*state_->mutex_);
  reset_grad_ = true;
}

std::map<std::string, Tensor> Module::gradients() const {
  std::lock_guard<std::mutex> lock(*state_->mutex_);
  // Clones: the next train_step adds into these buffers.
  std::map<std::string, Tensor> copies;
  for (const auto& [name, g] : gradients_) copies[name] = g.clone();
  return copies;
}

std::vector<std::string> Module::input_names(bool training) const {
  std::vector<std::string> names;
  if (!training && !eval_) return names;
  for (const auto& i : (training ? train_ : eval_)->inputs()) {
    if (!is_state(i.name)) names.push_back(i.name);
  }
  return names;
}

std::vector<std::string> Module::output_names(bool training) const {
  if (training) return {train_outputs_.begin(), train_outputs_.begin() + user_output_count_};
  std::vector<std::string> names;
  if (eval_) {
    for (const auto& o : eval_->outputs()) names.push_back(o.name);
  }
  return names;
}

void Module::export_model_for_inferencing(const std::string& path,
                                          const std::vector<std::string>& output_names) const {
  if (!eval_model_) {
    throw InvalidArgument(
        "export_model_for_inferencing: the Module was created without an eval model");
  }
  std::vector<std::string> names = output_names;
  if (names.empty()) {
    auto it = eval_model_->metadata.find(kInferenceOutputsMetadata);
    std::istringstream lines(it == eval_model_->metadata.end() ? "" : it->second);
    for (std::string line; std::getline(lines, line);) names.push_back(line);
  }
  std::map<std::string, Tensor> trained;
  {
    std::lock_guard<std::mutex> lock(*state_->mutex_);
    for (const auto& p : params_) trained[p] = state_->held_parameter(p);
    for (const auto& stat : stats_) trained[stat] = state_->held_parameter(stat);
    for (const auto& p : frozen_) trained[p] = state_->held_parameter(p);
  }
  ir::save_model(inference_model(*eval_model_, trained, names), path);
}

// --- Optimizer ---

Optimizer::Optimizer(Module& module, const std::string& optimizer_model_path, float learning_rate,
                     SessionOptions options)
    : module_(&module), path_(optimizer_model_path), learning_rate_(learning_rate) {
  ir::Model model = load_artifact(optimizer_model_path, "optimizer model");
  for (const auto& o : model.graph.outputs) {
    if (o.name.ends_with(names::kNewSuffix)) outputs_.push_back(o.name);
  }
  for (const auto& p : module.parameter_names()) {
    if (!model.graph.is_graph_input(names::kGradientPrefix + p) ||
        std::find(outputs_.begin(), outputs_.end(), p + names::kNewSuffix) == outputs_.end()) {
      throw InvalidArgument("optimizer model '" + optimizer_model_path +
                            "' does not update parameter '" + p + "' (no input '" +
                            names::kGradientPrefix + p + "' or output '" + p + names::kNewSuffix +
                            "')");
    }
  }
  session_ = std::make_unique<InferenceSession>(std::move(model), options);
  CheckpointState& state = module.state();
  const std::string where = checkpoint_name(state.path_);
  std::lock_guard<std::mutex> lock(*state.mutex_);
  // Everything is checked before the state changes. A checkpoint written by TrainingSession
  // holds the optimizer state among its tensors, unmarked: this optimizer's state tensors are
  // claimed from the parameters.
  auto rate = state.properties_.find(names::kLearningRate);
  learning_rate_ = rate != state.properties_.end()
                       ? rate_property(rate->second, where)
                       : checked_rate(learning_rate, "optimizer model '" + path_ + "'");
  const auto& params = module.parameter_names();
  std::vector<std::string> claimed;
  for (const auto& o : outputs_) {
    const std::string name = strip(o, names::kNewSuffix);
    if (name == names::kStep || std::find(params.begin(), params.end(), name) != params.end())
      continue;
    for (const auto* held : {&state.parameters_, &state.optimizer_state_}) {
      auto it = held->find(name);
      if (it == held->end()) continue;
      const IOInfo* input = find_input(*session_, name);
      if (std::string why = input ? feed_mismatch(*input, Value(it->second)) : std::string();
          !why.empty()) {
        throw InvalidArgument(where + ": optimizer state '" + name + "' " + why +
                              " (optimizer model '" + path_ + "')");
      }
      if (held == &state.parameters_) claimed.push_back(name);
    }
  }
  for (const auto& name : claimed) {
    state.optimizer_state_[name] = state.parameters_.at(name);
    state.parameters_.erase(name);
  }
  state.properties_[names::kLearningRate] = format_float(learning_rate_);
}

Optimizer::Optimizer(Optimizer&&) noexcept = default;
Optimizer::~Optimizer() = default;

void Optimizer::step() {
  CheckpointState& state = module_->state();
  std::lock_guard<std::mutex> lock(*state.mutex_);
  const auto& gradients = module_->gradients_;
  if (gradients.empty())
    throw InvalidArgument("Optimizer::step: no gradients yet (call Module::train_step first)");
  Tensor lr(DType::Float, {});
  lr.data<float>()[0] = learning_rate_;
  Tensor step(DType::Int64, {});
  step.data<int64_t>()[0] = state.step_;
  std::map<std::string, Value> feeds = {{names::kLearningRate, lr}, {names::kStep, step}};
  for (const auto& [p, g] : gradients) feeds[names::kGradientPrefix + p] = g;
  for (const auto* list : {&session_->inputs(), &session_->overridable_initializers()}) {
    for (const IOInfo& info : *list) {
      if (auto it = state.parameters_.find(info.name); it != state.parameters_.end()) {
        feeds[info.name] = it->second;
      } else if (auto s = state.optimizer_state_.find(info.name);
                 s != state.optimizer_state_.end()) {
        feeds[info.name] = s->second;
      }
      // Optimizer state not in the checkpoint yet takes the model's first-step value.
    }
  }
  std::vector<Value> outs = session_->run(outputs_, feeds);
  const auto& params = module_->parameter_names();
  for (size_t i = 0; i < outputs_.size(); ++i) {
    const std::string name = strip(outputs_[i], names::kNewSuffix);
    if (name == names::kStep) {
      state.step_ = outs[i].tensor().scalar_as_int(0);
    } else if (std::find(params.begin(), params.end(), name) != params.end()) {
      state.parameters_[name] = outs[i].tensor();
    } else {
      state.optimizer_state_[name] = outs[i].tensor();
    }
  }
}

void Optimizer::set_learning_rate(float learning_rate) {
  checked_rate(learning_rate, "set_learning_rate");
  CheckpointState& state = module_->state();
  std::lock_guard<std::mutex> lock(*state.mutex_);
  learning_rate_ = learning_rate;
  state.properties_[names::kLearningRate] = format_float(learning_rate);
}

float Optimizer::learning_rate() const {
  std::lock_guard<std::mutex> lock(*module_->state_->mutex_);
  return learning_rate_;
}

// --- LinearLRScheduler ---

LinearLRScheduler::LinearLRScheduler(Optimizer& optimizer, int64_t warmup_step_count,
                                     int64_t total_step_count, float initial_lr)
    : optimizer_(&optimizer),
      warmup_(warmup_step_count),
      total_(total_step_count),
      initial_lr_(initial_lr) {
  if (warmup_step_count < 0 || total_step_count < warmup_step_count) {
    throw InvalidArgument("LinearLRScheduler: need 0 <= warmup_step_count (" +
                          std::to_string(warmup_step_count) + ") <= total_step_count (" +
                          std::to_string(total_step_count) + ")");
  }
  if (!std::isfinite(initial_lr) || initial_lr < 0) {
    throw InvalidArgument("LinearLRScheduler: initial_lr must be finite and not negative, got " +
                          format_float(initial_lr));
  }
  optimizer.set_learning_rate(
      static_cast<float>(initial_lr * factor(optimizer.module().state().step())));
}

double LinearLRScheduler::factor(int64_t step) const {
  if (step < warmup_)
    return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_));
  return std::max(0.0, static_cast<double>(total_ - step) /
                           static_cast<double>(std::max<int64_t>(1, total_ - warmup_)));
}

void LinearLRScheduler::step() {
  optimizer_->set_learning_rate(
      static_cast<float>(initial_lr_ * factor(optimizer_->module().state().step())));
}

// --- shared helpers ---

void accumulate(Tensor& sum, const Tensor& addend) {
  if (sum.dtype() != addend.dtype() || sum.shape() != addend.shape()) {
    throw InvalidArgument("accumulate: cannot add " + describe(addend) + " into " + describe(sum));
  }
  dispatch_float(sum.dtype(), "gradient accumulation", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* acc = sum.data<T>();
    const T* add = addend.data<T>();
    for (int64_t k = 0; k < sum.size(); ++k) {
      if constexpr (std::is_floating_point_v<T>) {
        acc[k] += add[k];
      } else {
        acc[k] = T(static_cast<float>(acc[k]) + static_cast<float>(add[k]));
      }
    }
  });
}

ir::Model inference_model(const ir::Model& forward, const std::map<std::string, Tensor>& trained,
                          const std::vector<std::string>& output_names) {
  ir::Model m = forward.clone();
  ir::Graph& g = m.graph;
  std::vector<ir::ValueInfo> outputs;
  for (const auto& name : output_names) {
    const onnx::TypeProto* type = name.empty() ? nullptr : g.type_of(name);
    const bool produced = g.producer(name) || g.is_graph_input(name) || g.find_initializer(name);
    if (!type || !produced) {
      throw InvalidArgument("export_model_for_inferencing: the model has no output '" + name +
                            "' (no value of that name with a known type)");
    }
    outputs.push_back({name, std::make_shared<onnx::TypeProto>(*type), ""});
  }
  if (outputs.empty()) throw InvalidArgument("export_model_for_inferencing: no output names given");
  g.outputs = std::move(outputs);
  // Keep the nodes some output depends on, walking backwards.
  std::set<std::string> needed(output_names.begin(), output_names.end());
  std::vector<std::unique_ptr<ir::Node>> kept;
  for (auto it = g.nodes.rbegin(); it != g.nodes.rend(); ++it) {
    if (std::none_of((*it)->outputs.begin(), (*it)->outputs.end(),
                     [&](const std::string& o) { return needed.count(o) != 0; })) {
      continue;
    }
    needed.insert((*it)->inputs.begin(), (*it)->inputs.end());
    for (const auto& a : (*it)->attributes) {
      for (const auto& sub : a.graphs) {
        for (const auto& v : sub->free_variables()) needed.insert(v);
      }
    }
    kept.push_back(std::move(*it));
  }
  std::reverse(kept.begin(), kept.end());
  g.nodes = std::move(kept);
  std::erase_if(g.inputs, [&](const ir::ValueInfo& v) {
    return !needed.count(v.name) || trained.count(v.name);
  });
  std::vector<std::shared_ptr<onnx::TensorProto>> initializers;
  for (const auto& t : g.initializers) {
    if (!needed.count(t->name())) continue;
    auto it = trained.find(t->name());
    if (it == trained.end()) {
      initializers.push_back(t);
      continue;
    }
    auto proto = std::make_shared<onnx::TensorProto>();
    tensor_to_proto(it->second, t->name(), proto.get());
    initializers.push_back(std::move(proto));
  }
  // A trained value that was a plain input (no initializer) becomes one.
  for (const auto& [name, t] : trained) {
    if (!needed.count(name) || g.find_initializer(name)) continue;
    auto proto = std::make_shared<onnx::TensorProto>();
    tensor_to_proto(t, name, proto.get());
    initializers.push_back(std::move(proto));
  }
  g.initializers = std::move(initializers);
  std::erase_if(g.value_info, [&](const auto& kv) { return !needed.count(kv.first); });
  g.renumber();
  return m;
}

}  // namespace graft::training
