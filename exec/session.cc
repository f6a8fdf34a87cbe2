#include "exec/session.h"

#include <chrono>
#include <fstream>
#include <set>

#include "autodiff/gradient.h"
#include "exec/memory_limit.h"
#include "exec/partition.h"
#include "exec/plan.h"
#include "exec/provider.h"
#include "exec/tensor_proto.h"
#include "exec/threading.h"
#include "ir/model.h"
#include "ir/schema.h"
#include "ir/serialize.h"
#include "ir/transforms/inline_functions.h"
#include "ir/transforms/optimize.h"
#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"

namespace graft {
namespace {

std::string type_string(const onnx::TypeProto& t) {
  switch (t.value_case()) {
    case onnx::TypeProto::kTensorType:
      return std::string("tensor(") + dtype_name(static_cast<DType>(t.tensor_type().elem_type())) +
             ")";
    case onnx::TypeProto::kSequenceType:
      return "seq(" + type_string(t.sequence_type().elem_type()) + ")";
    case onnx::TypeProto::kMapType:
      return std::string("map(") + dtype_name(static_cast<DType>(t.map_type().key_type())) + "," +
             type_string(t.map_type().value_type()) + ")";
    case onnx::TypeProto::kOptionalType:
      return "optional(" + type_string(t.optional_type().elem_type()) + ")";
    case onnx::TypeProto::kSparseTensorType:
      return std::string("sparse_tensor(") +
             dtype_name(static_cast<DType>(t.sparse_tensor_type().elem_type())) + ")";
    default:
      return "unknown";
  }
}

IOInfo io_info(const ir::ValueInfo& v) {
  IOInfo info;
  info.name = v.name;
  if (!v.type) return info;
  info.type = type_string(*v.type);
  info.dtype = elem_dtype_of(*v.type);
  if (v.type->has_tensor_type() && v.type->tensor_type().has_shape()) {
    info.has_shape = true;
    for (const auto& d : v.type->tensor_type().shape().dim()) {
      info.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
      info.dim_params.push_back(d.has_dim_param() ? d.dim_param() : "");
    }
  }
  return info;
}

std::string describe_value(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Tensor:
      return std::string("tensor(") + dtype_name(v.tensor().dtype()) + ") of shape " +
             shape_to_string(v.tensor().shape());
    case Value::Kind::Sequence:
      return std::string("seq(tensor(") + dtype_name(v.elem_dtype()) + "))";
    case Value::Kind::Map:
      return "map";
    case Value::Kind::Optional:
      return "optional";
    default:
      return "None";
  }
}

// Lets go of the initializers of `graph` and its nested graphs (their names stay known to the
// plan).
void drop_initializers(ir::Graph& graph) {
  graph.initializers.clear();
  for (auto& node : graph.nodes) {
    for (auto& attr : node->attributes) {
      for (auto& sub : attr.graphs) drop_initializers(*sub);
    }
  }
}

}  // namespace

std::string feed_mismatch(const IOInfo& info, const Value& v) {
  if (info.type.empty() || info.type.rfind("tensor(", 0) != 0) return "";
  auto bad = [&](const std::string& why) {
    return why + " (expected " + info.type + ", got " + describe_value(v) + ")";
  };
  if (!v.is_tensor()) return bad("wrong kind of value");
  const Tensor& t = v.tensor();
  if (info.dtype != DType::Undefined && t.dtype() != info.dtype) return bad("wrong element type");
  if (!info.has_shape) return "";
  if (t.rank() != static_cast<int64_t>(info.dims.size())) {
    return bad("rank " + std::to_string(t.rank()) + " instead of " +
               std::to_string(info.dims.size()));
  }
  for (size_t i = 0; i < info.dims.size(); ++i) {
    if (info.dims[i] >= 0 && t.dim(static_cast<int64_t>(i)) != info.dims[i]) {
      return bad("dimension " + std::to_string(i) + " is " +
                 std::to_string(t.dim(static_cast<int64_t>(i))) + ", the model requires " +
                 std::to_string(info.dims[i]));
    }
  }
  return "";
}

InferenceSession::InferenceSession(ir::Model model, SessionOptions options,
                                   std::vector<std::string> providers)
    : model_(std::make_unique<ir::Model>(std::move(model))), options_(std::move(options)) {
  const MemoryLimitScope memory_limit(options_.memory_limit_bytes);
  // Kernels made now (oneDNN primitives) size their work for the team the session's runs use.
  const OpenMPThreads threads(options_.intra_op_num_threads);
  warn_if_openmp_spins(options_.intra_op_num_threads);
  // ONNX's Gradient operator runs as the gradient subgraph it denotes.
  if (autodiff::has_gradient_ops(*model_)) *model_ = autodiff::expand_gradient_ops(*model_);
  PlannedModel planned = plan_model(*model_, providers, options_);
  plan_ = std::move(planned.plan);
  if (options_.enable_mem_pattern) plan_->enable_mem_pattern();
  if (options_.execution_mode == ExecutionMode::Parallel) {
    const int intra = openmp_threads(options_.intra_op_num_threads);
    plan_->enable_parallel(
        options_.inter_op_num_threads > 0 ? options_.inter_op_num_threads : intra, intra);
  }
  providers_ = std::move(planned.providers);

  std::set<std::string> initializer_names;
  for (const auto& t : model_->graph.initializers) initializer_names.insert(t->name());
  for (const auto& v : model_->graph.inputs) {
    (initializer_names.count(v.name) ? overridable_ : inputs_).push_back(io_info(v));
  }
  for (const auto& v : model_->graph.outputs) outputs_.push_back(io_info(v));
  // The plan holds the weights it reads (views of these protos, or copies of its own); the model
  // lets go of them, so a weight every reader packed is freed and none is kept twice.
  drop_initializers(model_->graph);
  if (options_.enable_profiling) {
    profiler_ = std::make_unique<Profiler>();
  }
}

InferenceSession InferenceSession::from_file(const std::string& path, SessionOptions options,
                                             std::vector<std::string> providers) {
  return InferenceSession(ir::load_model(path), std::move(options), std::move(providers));
}

InferenceSession InferenceSession::from_bytes(const std::string& bytes, SessionOptions options,
                                              std::vector<std::string> providers,
                                              const std::string& base_dir) {
  return InferenceSession(ir::load_model_from_bytes(bytes, base_dir), std::move(options),
                          std::move(providers));
}

InferenceSession::InferenceSession(InferenceSession&&) noexcept = default;
InferenceSession::~InferenceSession() = default;

std::vector<Value> InferenceSession::run(const std::vector<std::string>& output_names,
                                         const std::map<std::string, Value>& feeds,
                                         const RunOptions& options) {
  return run_impl(output_names, feeds, nullptr, options);
}

std::vector<Value> InferenceSession::run_donating(const std::vector<std::string>& output_names,
                                                  const std::map<std::string, Value>& feeds,
                                                  std::map<std::string, Tensor>& donated,
                                                  const RunOptions& options) {
  return run_impl(output_names, feeds, &donated, options);
}

std::vector<Value> InferenceSession::run_impl(const std::vector<std::string>& output_names,
                                              const std::map<std::string, Value>& feeds,
                                              std::map<std::string, Tensor>* donated,
                                              const RunOptions& options) {
  const MemoryLimitScope memory_limit(options_.memory_limit_bytes);
  const auto& names = plan_->input_names();
  auto slot_of = [&](const std::string& name) {
    size_t i = 0;
    while (i < names.size() && names[i] != name) ++i;
    return i;
  };
  auto check = [&](const std::string& name, const Value& value) {
    for (const auto* list : {&inputs_, &overridable_}) {
      for (const auto& info : *list) {
        if (info.name != name) continue;
        if (std::string why = feed_mismatch(info, value); !why.empty())
          throw InvalidArgument("input '" + name + "': " + why);
      }
    }
  };
  std::vector<Value> inputs(names.size());
  std::set<std::string> fed;
  for (const auto& [name, value] : feeds) {
    const size_t i = slot_of(name);
    if (i == names.size()) {
      std::string known;
      for (const auto& in : inputs_) known += (known.empty() ? "" : ", ") + in.name;
      throw InvalidArgument("invalid input name '" + name + "'; the model's inputs are: " + known);
    }
    check(name, value);
    inputs[i] = value;
    fed.insert(name);
  }
  std::vector<bool> moved(names.size(), false);
  if (donated) {
    for (const auto& [name, t] : *donated) {
      const size_t i = slot_of(name);
      if (i == names.size()) continue;  // not read by this model: stays with the caller
      check(name, Value(t));
      moved[i] = true;
      fed.insert(name);
    }
  }
  for (const auto& info : inputs_) {
    bool optional_type = info.type.rfind("optional(", 0) == 0;
    if (!fed.count(info.name) && !optional_type) {
      throw InvalidArgument("input '" + info.name + "' (" + info.type +
                            ") is missing from the feeds");
    }
  }
  std::vector<size_t> selected;
  for (const auto& want : output_names) {
    const auto& outs = plan_->output_names();
    size_t i = 0;
    while (i < outs.size() && outs[i] != want) ++i;
    if (i == outs.size()) throw InvalidArgument("invalid output name '" + want + "'");
    selected.push_back(i);
  }
  // The OpenMP thread count belongs to the calling thread, not the session: set for each run so
  // sessions with different settings can take turns on one thread.
  const OpenMPThreads threads(options_.intra_op_num_threads);
  std::vector<Value> all;
  if (!donated) {
    all = plan_->run(inputs, {}, profiler_.get(), options,
                     output_names.empty() ? nullptr : &selected);
  } else {
    for (size_t i = 0; i < names.size(); ++i) {
      if (moved[i]) inputs[i] = Value(std::move(donated->at(names[i])));
    }
    try {
      all = plan_->run_donated(inputs, moved, profiler_.get(), options);
    } catch (...) {
      for (size_t i = 0; i < names.size(); ++i) {
        if (moved[i] && inputs[i].is_tensor()) (*donated)[names[i]] = inputs[i].tensor();
      }
      throw;
    }
  }
  if (output_names.empty()) return all;
  std::vector<Value> result;
  for (size_t i : selected) result.push_back(all[i]);
  return result;
}

int64_t InferenceSession::profiling_start_time_ns() const {
  return profiler_ ? profiler_->start_ns : 0;
}

std::vector<InferenceSession::NodeAssignment> InferenceSession::node_assignments() const {
  std::vector<NodeAssignment> result;
  for (const auto& [provider, node] : plan_->assignments())
    result.push_back({provider, node->name, node->op_type, node->domain});
  return result;
}

std::map<std::string, size_t> InferenceSession::planned_peak_bytes() const {
  return plan_->planned_peak_bytes();
}

std::string InferenceSession::end_profiling() {
  if (!profiler_) return "";
  std::string path = profiler_->write_trace(options_.profile_file_prefix);
  profiler_.reset();
  return path;
}

Profiler::Profiler()
    : origin_us(std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count()),
      start_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count()) {}

std::string Profiler::write_trace(const std::string& prefix) const {
  auto stamp = std::chrono::system_clock::now().time_since_epoch().count();
  std::string path = prefix + "_" + std::to_string(stamp) + ".json";
  std::ofstream out(path);
  out << "[\n";
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    out << "{\"cat\":\"Node\",\"ph\":\"X\",\"pid\":0,\"tid\":0,\"name\":\"" << e.name
        << "\",\"ts\":" << e.start_us << ",\"dur\":" << e.duration_us << ",\"args\":{\"op_name\":\""
        << e.op_type << "\"}}" << (i + 1 < events.size() ? ",\n" : "\n");
  }
  out << "]\n";
  if (!out) throw Fail("could not write the profile " + path);
  return path;
}

}  // namespace graft
