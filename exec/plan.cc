#include "exec/plan.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string_view>
#include <unordered_set>

#include "exec/constant_evaluator.h"
#include "exec/memory_limit.h"
#include "exec/memory_plan.h"
#include "exec/parallel_executor.h"
#include "exec/partition.h"
#include "exec/provider.h"
#include "exec/tensor_proto.h"
#include "ir/model.h"
#include "ir/names.h"
#include "ir/schema.h"
#include "ir/serialize.h"
#include "ir/transforms/fuse_elementwise.h"
#include "ir/transforms/inline_functions.h"
#include "ir/transforms/nchwc.h"
#include "ir/transforms/nhwc_int8.h"
#include "ir/transforms/optimize.h"
#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"

namespace graft {

struct GraphPlan::Step {
  const ir::Node* node = nullptr;
  std::string desc;
  std::unique_ptr<Kernel> kernel;
  std::vector<int> inputs;    // -1 for an omitted input
  std::vector<int> outputs;   // -1 for an omitted output
  std::vector<int> implicit;  // outer-scope values nested graphs read, in subplan order
  std::vector<std::string> subgraph_attrs;
  std::vector<std::unique_ptr<GraphPlan>> subplans;
  std::vector<std::vector<int>> subplan_outer;  // per subplan: indices into `implicit`
  std::vector<int> release;                     // slots dropped after this step
  std::vector<int> uses;  // parallel mode: the slots it reads or writes, outputs excluded, once
  InPlaceKernel* in_place_kernel = nullptr;
  std::vector<std::pair<int, int>> in_place;  // (output, input) pairs the plan allows
  Allocator* allocator = nullptr;             // the memory of the provider running the node
  std::string provider;                       // the name of the provider running the node
};

namespace {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Whether error `e` of a node's kernel already names the node (a kernel's own ctx.fail does).
bool names_node(const std::exception& e, const std::string& desc) {
  return std::string_view(e.what()).starts_with(desc);
}

// The shapes and element types of a node's tensor inputs, for errors about its working memory:
// "[float [1, 3, 224, 224], int64 [4]]".
std::string describe_inputs(const KernelContext& ctx) {
  std::string text = "[";
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (i > 0) text += ", ";
    if (!ctx.has_input(i)) {
      text += "(omitted)";
    } else if (const Value& v = ctx.input_value(i); v.is_tensor()) {
      text +=
          std::string(dtype_name(v.tensor().dtype())) + " " + shape_to_string(v.tensor().shape());
    } else {
      text += "(not a tensor)";
    }
  }
  return text + "]";
}

// Rethrows the exception in flight from the kernel of the node `desc` describes (being made, or
// running with `ctx`) so that it names the node: graft's errors keep their type, with the node
// put in front when the message lacks it; running out of memory, or past a container's largest
// size, becomes Fail naming the node and, while running, the shapes of its inputs.
[[noreturn]] void rethrow_for_node(const std::string& desc, const KernelContext* ctx) {
  const std::string inputs = ctx ? ", with inputs " + describe_inputs(*ctx) : "";
  try {
    throw;
  } catch (const InvalidArgument& e) {
    if (names_node(e, desc)) throw;
    throw InvalidArgument(desc + ": " + e.what());
  } catch (const Fail& e) {
    if (names_node(e, desc)) throw;
    throw Fail(desc + ": " + e.what());
  } catch (const NotImplemented& e) {
    if (names_node(e, desc)) throw;
    throw NotImplemented(desc + ": " + e.what());
  } catch (const std::bad_alloc&) {
    throw Fail(desc + ": out of memory for the kernel's working memory" + inputs);
  } catch (const std::length_error& e) {
    throw Fail(desc + ": a working buffer of the kernel passes the largest size (" + e.what() +
               ")" + inputs);
  } catch (const std::exception& e) {
    throw Fail(desc + ": " + e.what());
  }
}

// Runs one nested plan with the outer values of the current frame.
class PlanRunner : public SubgraphRunner {
 public:
  // `terminate`: the run's RunOptions::terminate, checked before each node of the nested graph
  // too, so a Loop of many iterations stops when it is set.
  PlanRunner(const GraphPlan& plan, std::vector<const Value*> outer, Profiler* profiler,
             const std::atomic<bool>* terminate)
      : plan_(plan), outer_(std::move(outer)), profiler_(profiler), terminate_(terminate) {}
  std::vector<Value> run(const std::vector<Value>& inputs) override {
    RunOptions options;
    options.terminate = terminate_;
    return plan_.run(inputs, outer_, profiler_, options);
  }
  size_t num_inputs() const override { return plan_.input_names().size(); }
  size_t num_outputs() const override { return plan_.output_names().size(); }

 private:
  const GraphPlan& plan_;
  std::vector<const Value*> outer_;
  Profiler* profiler_;
  const std::atomic<bool>* terminate_;
};

bool is_copy(const ir::Node& n, const char* op_type) {
  return n.domain == names::kDomain && n.op_type == op_type;
}

bool contains(const std::vector<int>& list, int i) {
  return std::find(list.begin(), list.end(), i) != list.end();
}

// The plan whose current run on this thread leaves its device outputs where they are
// (RunOptions::outputs_on_device); set by GraphPlan::run and run_donated for the length of a run.
thread_local const GraphPlan* outputs_stay_on_device = nullptr;

class OutputsOnDevice {
 public:
  OutputsOnDevice(const GraphPlan* plan, bool on) : previous_(outputs_stay_on_device) {
    outputs_stay_on_device = on ? plan : nullptr;
  }
  ~OutputsOnDevice() { outputs_stay_on_device = previous_; }
  OutputsOnDevice(const OutputsOnDevice&) = delete;
  OutputsOnDevice& operator=(const OutputsOnDevice&) = delete;

 private:
  const GraphPlan* previous_;
};

// A MemcpyToHost that only returns a graph output: in a run of `plan` that keeps outputs on
// the device, the device value is handed on instead of copied.
class OutputCopy final : public Kernel {
 public:
  OutputCopy(std::unique_ptr<Kernel> copy, const GraphPlan* plan)
      : copy_(std::move(copy)), plan_(plan) {}
  void compute(KernelContext& ctx) override {
    if (outputs_stay_on_device == plan_) {
      ctx.set_output(0, ctx.input_value(0));
      return;
    }
    copy_->compute(ctx);
  }

 private:
  std::unique_ptr<Kernel> copy_;
  const GraphPlan* plan_;
};

// Adds the buffers `v` holds (a tensor, sequence elements, map keys and values) to `out`.
void collect_buffers(const Value& v, std::vector<const Buffer*>& out) {
  switch (v.kind()) {
    case Value::Kind::Tensor:
      out.push_back(v.tensor().buffer().get());
      break;
    case Value::Kind::Map:
      out.push_back(v.map_keys().buffer().get());
      out.push_back(v.map_values().buffer().get());
      break;
    case Value::Kind::Sequence:
    case Value::Kind::Optional:
      for (const auto& e : v.elements()) collect_buffers(e, out);
      break;
    case Value::Kind::None:
      break;
  }
}

// The value of initializer `proto` without copying its raw_data when that holds exactly its
// elements (each weight stays one copy in memory), else a copy made by tensor_from_proto, which
// also names what is wrong with a malformed one.
Tensor constant_tensor(const std::shared_ptr<onnx::TensorProto>& proto) {
  const auto dtype = static_cast<DType>(proto->data_type());
  const bool plain = dtype != DType::Undefined && dtype != DType::String &&
                     !dtype_is_sub_byte(dtype) && proto->has_raw_data() &&
                     proto->data_location() != onnx::TensorProto::EXTERNAL;
  if (!plain) return tensor_from_proto(*proto);
  Shape shape(proto->dims().begin(), proto->dims().end());
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) return tensor_from_proto(*proto);
    count *= d;
  }
  const std::string& raw = proto->raw_data();
  if (raw.size() != static_cast<size_t>(count) * dtype_size(dtype) || raw.empty())
    return tensor_from_proto(*proto);
  if (proto.use_count() > 1) {
    // Shared with another model: a view that keeps the proto alive.
    auto buffer = std::make_shared<Buffer>(const_cast<char*>(raw.data()), proto);
    return Tensor(dtype, std::move(shape), std::move(buffer));
  }
  // Held by this graph alone: the elements move out of it, so the tensor owns them and frees them
  // when the plan lets go (the proto keeps its name, type and dims).
  auto bytes = std::make_shared<std::string>(std::move(*proto->mutable_raw_data()));
  proto->clear_raw_data();
  auto buffer = std::make_shared<Buffer>(bytes->data(), bytes);
  return Tensor(dtype, std::move(shape), std::move(buffer));
}

}  // namespace

GraphPlan::GraphPlan(const ir::Graph& graph, const PlanContext& ctx,
                     std::vector<std::string> outer_names) {
  auto new_slot = [&](const std::string& name) {
    int s = static_cast<int>(num_slots_++);
    slot_of_[name] = s;
    return s;
  };
  for (const auto& name : outer_names) outer_slots_.push_back(new_slot(name));
  for (const auto& v : graph.inputs) {
    input_names_.push_back(v.name);
    input_slots_.push_back(new_slot(v.name));
  }
  // Initializers that are also inputs keep the input's slot and act as its default. The device
  // copies of constants join them later: reserved, so no pointer into constants_ moves.
  constants_.reserve(
      graph.initializers.size() +
      static_cast<size_t>(std::count_if(graph.nodes.begin(), graph.nodes.end(), [](const auto& n) {
        return is_copy(*n, "MemcpyFromHost");
      })));
  for (const auto& t : graph.initializers) {
    auto it = slot_of_.find(t->name());
    bool is_input = graph.is_graph_input(t->name());
    int s = is_input ? it->second : new_slot(t->name());
    try {
      constants_.emplace_back(s, Value(constant_tensor(t)));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument("graph '" + graph.name + "': initializer " + e.what());
    }
  }
  std::map<int, const Tensor*> constant_of;
  for (const auto& [s, v] : constants_) constant_of[s] = &v.tensor();
  // An initializer that is also an input may be overridden per run: not a constant.
  for (const auto& v : graph.inputs) constant_of.erase(slot_of_[v.name]);

  auto lookup = [&](const ir::Node& n, const std::string& name) {
    auto it = slot_of_.find(name);
    if (it == slot_of_.end()) {
      throw InvalidArgument(n.describe() + " reads '" + name +
                            "', which no node, input or initializer defines");
    }
    return it->second;
  };
  // Slots whose elements a host node reads (a host kernel's data input, a device kernel's host
  // input, a nested graph's outer value).
  std::unordered_set<int> read_on_host;

  // An initializer every reader packed (Kernel::packed_inputs) is never read again: its elements
  // are freed as soon as its last reader is built, and its slot keeps a tensor of its dtype and
  // shape without elements, for kernels that still ask has_input. Per initializer slot, the nodes
  // still to be built that read it; `read_later` holds those something reads at run time (a
  // kernel that did not pack it, a nested graph) or that leave as outputs.
  std::map<int, int> readers_left;
  std::unordered_set<int> read_later;
  std::map<int, Value*> initializer_value;
  for (auto& [s, v] : constants_) {
    if (constant_of.count(s)) initializer_value[s] = &v;
  }
  auto initializer_slot = [&](const std::string& name) {
    auto it = slot_of_.find(name);
    return it != slot_of_.end() && initializer_value.count(it->second) ? it->second : -1;
  };
  for (const auto& n : graph.nodes) {
    for (const auto& name : n->inputs) {
      if (const int s = initializer_slot(name); s >= 0) ++readers_left[s];
    }
    for (const auto& attr : n->attributes) {
      for (const auto& sub : attr.graphs) {
        for (const auto& name : sub->free_variables()) read_later.insert(initializer_slot(name));
      }
    }
  }
  for (const auto& v : graph.outputs) read_later.insert(initializer_slot(v.name));
  // `copied_now`: the step is a copy of a constant made while planning, not a reader at run time.
  auto built = [&](const Step& step, bool copied_now) {
    const std::vector<int> packed = copied_now ? std::vector<int>{} : step.kernel->packed_inputs();
    for (size_t k = 0; k < step.inputs.size(); ++k) {
      const int s = step.inputs[k];
      auto left = readers_left.find(s);
      if (left == readers_left.end()) continue;
      if (!copied_now && !contains(packed, static_cast<int>(k))) read_later.insert(s);
      if (--left->second > 0 || read_later.count(s)) continue;
      Value& v = *initializer_value.at(s);
      v = Value(Tensor(v.tensor().dtype(), v.tensor().shape(), nullptr));
    }
  };

  const std::vector<int> owners = partition(ctx.model, graph, ctx.providers);
  size_t step_index = 0;
  for (const auto& node_ptr : graph.nodes) {
    const ir::Node& n = *node_ptr;
    const int owner = owners[step_index++];
    auto step = std::make_unique<Step>();
    step->node = &n;
    step->desc = n.describe();
    if (owner >= 0) step->provider = ctx.providers[static_cast<size_t>(owner)]->name();
    std::vector<DType> in_dtypes = input_dtypes_of(graph, n);
    std::vector<const Tensor*> constants;
    for (const auto& name : n.inputs) {
      int s = name.empty() ? -1 : lookup(n, name);
      step->inputs.push_back(s);
      auto c = constant_of.find(s);
      constants.push_back(c == constant_of.end() ? nullptr : c->second);
    }
    // Nested graphs: their outer-scope reads become implicit inputs of this node.
    std::map<std::string, int> implicit_index;
    for (const auto& attr : n.attributes) {
      for (const auto& sub : attr.graphs) {
        std::vector<std::string> free = sub->free_variables();
        std::vector<int> idx;
        for (const auto& fv : free) {
          auto [it, inserted] = implicit_index.emplace(fv, static_cast<int>(step->implicit.size()));
          if (inserted) step->implicit.push_back(lookup(n, fv));
          idx.push_back(it->second);
        }
        step->subgraph_attrs.push_back(attr.name);
        step->subplans.push_back(std::make_unique<GraphPlan>(*sub, ctx, free));
        step->subplan_outer.push_back(std::move(idx));
      }
    }
    // Kernel resolution, from the registry of the provider the partitioner chose.
    int64_t opset = ctx.model.opset(n.domain);
    const std::string domain_name = n.domain.empty() ? "ai.onnx" : n.domain;
    if (opset == 0) {
      throw InvalidArgument(step->desc + ": the model imports no opset for domain '" + domain_name +
                            "'");
    }
    const int since = since_version_of(ctx.model, n);
    if (owner < 0) {
      std::string names;
      for (const auto* p : ctx.providers)
        names += std::string(names.empty() ? "" : ", ") + p->name();
      throw NotImplemented(step->desc + ": no kernel for op " + n.op_type + " (domain '" +
                           domain_name + "', opset " + std::to_string(opset) + ") in providers [" +
                           names + "]");
    }
    const KernelDef* def = ctx.providers[static_cast<size_t>(owner)]->registry().find(
        n.domain, n.op_type, since, in_dtypes, &n);
    if (!def) {
      throw NotImplemented(step->desc + ": no " +
                           ctx.providers[static_cast<size_t>(owner)]->name() + " kernel for op " +
                           n.op_type + " (domain '" + domain_name + "', opset " +
                           std::to_string(opset) + ") with input type " +
                           dtype_name(in_dtypes.empty() ? DType::Undefined : in_dtypes[0]));
    }
    const ExecutionProvider* provider = ctx.providers[static_cast<size_t>(owner)];
    KernelInfo info(n, since, std::move(in_dtypes), std::move(constants), provider);
    try {
      step->kernel = def->factory(info);
    } catch (...) {
      rethrow_for_node(step->desc, nullptr);
    }
    // A copy to the host runs on the device's provider and puts its output in host memory.
    step->allocator = is_copy(n, "MemcpyToHost") ? &cpu_allocator() : &provider->allocator();
    const bool on_host = provider->allocator().on_host();
    for (size_t k = 0; k < step->inputs.size(); ++k) {
      const int i = static_cast<int>(k);
      const bool host_read =
          on_host ? !contains(def->metadata_inputs, i) : contains(def->host_inputs, i);
      if (step->inputs[k] >= 0 && host_read && !is_copy(n, "MemcpyFromHost"))
        read_on_host.insert(step->inputs[k]);
    }
    read_on_host.insert(step->implicit.begin(), step->implicit.end());
    for (const auto& name : n.outputs) step->outputs.push_back(name.empty() ? -1 : new_slot(name));
    // A constant bound for the device is copied once, now, and its copy is a constant too.
    if (is_copy(n, "MemcpyFromHost") && !step->inputs.empty() && step->outputs.size() == 1 &&
        step->outputs[0] >= 0 && constant_of.count(step->inputs[0])) {
      const Value host(*constant_of.at(step->inputs[0]));
      Value device;
      KernelContext copy(step->desc, {&host}, {&device}, nullptr, *step->allocator);
      step->kernel->compute(copy);
      if (auto finish = copy.take_finish()) finish();
      constants_.emplace_back(step->outputs[0], std::move(device));
      constant_of[step->outputs[0]] = &constants_.back().second.tensor();
      built(*step, true);
      continue;
    }
    built(*step, false);
    steps_.push_back(std::move(step));
  }
  for (const auto& v : graph.outputs) {
    output_names_.push_back(v.name);
    auto it = slot_of_.find(v.name);
    if (it == slot_of_.end()) {
      throw InvalidArgument("graph '" + graph.name + "': output '" + v.name +
                            "' is not produced by any node");
    }
    output_slots_.push_back(it->second);
  }
  for (int s : input_slots_) {
    input_read_on_host_.push_back(read_on_host.count(s) > 0 || contains(output_slots_, s));
  }
  // The copies that only return an output may leave it on the device (RunOptions).
  std::unordered_set<int> read;
  for (const auto& step : steps_) {
    read.insert(step->inputs.begin(), step->inputs.end());
    read.insert(step->implicit.begin(), step->implicit.end());
  }
  for (auto& step : steps_) {
    if (!is_copy(*step->node, "MemcpyToHost") || step->outputs.size() != 1) continue;
    const int s = step->outputs[0];
    if (s >= 0 && contains(output_slots_, s) && !read.count(s))
      step->kernel = std::make_unique<OutputCopy>(std::move(step->kernel), this);
  }
  // Lifetimes: a slot is dropped after the last step that reads it, unless it is an output.
  std::unordered_set<int> keep(output_slots_.begin(), output_slots_.end());
  std::vector<int> last_use(num_slots_, -1);
  for (size_t i = 0; i < steps_.size(); ++i) {
    for (int s : steps_[i]->inputs) {
      if (s >= 0) last_use[static_cast<size_t>(s)] = static_cast<int>(i);
    }
    for (int s : steps_[i]->implicit) last_use[static_cast<size_t>(s)] = static_cast<int>(i);
    for (int s : steps_[i]->outputs) {
      if (s >= 0 && last_use[static_cast<size_t>(s)] < static_cast<int>(i))
        last_use[static_cast<size_t>(s)] = static_cast<int>(i);
    }
  }
  for (size_t s = 0; s < num_slots_; ++s) {
    if (last_use[s] >= 0 && !keep.count(static_cast<int>(s)))
      steps_[static_cast<size_t>(last_use[s])]->release.push_back(static_cast<int>(s));
  }
  // In place: an output may take over an input that no one reads afterwards. Whether the
  // buffer itself may be written is decided per run (see execute).
  for (size_t i = 0; i < steps_.size(); ++i) {
    Step& step = *steps_[i];
    step.in_place_kernel = dynamic_cast<InPlaceKernel*>(step.kernel.get());
    if (!step.in_place_kernel) continue;
    for (const auto& [o, j] : step.in_place_kernel->in_place_pairs()) {
      if (o < 0 || static_cast<size_t>(o) >= step.outputs.size() || j < 0 ||
          static_cast<size_t>(j) >= step.inputs.size())
        continue;
      const int s = step.inputs[static_cast<size_t>(j)];
      if (s < 0 || step.outputs[static_cast<size_t>(o)] < 0) continue;
      if (constant_of.count(s) || keep.count(s) ||
          last_use[static_cast<size_t>(s)] != static_cast<int>(i))
        continue;
      if (std::count(step.inputs.begin(), step.inputs.end(), s) != 1 ||
          std::count(step.implicit.begin(), step.implicit.end(), s) != 0)
        continue;
      step.in_place.emplace_back(o, j);
    }
    has_in_place_ = has_in_place_ || !step.in_place.empty();
  }
}

GraphPlan::~GraphPlan() = default;

void GraphPlan::own_providers(std::vector<std::unique_ptr<ExecutionProvider>> providers) {
  providers_ = std::move(providers);
}

// onnxruntime's ORT_ENABLE_ALL: the level of its layout transformations (NCHWc).
constexpr int kLayoutOptimizationLevel = 99;

PlannedModel plan_model(ir::Model& model, const std::vector<std::string>& names,
                        const SessionOptions& options) {
  PlannedModel planned;
  std::vector<std::unique_ptr<ExecutionProvider>> providers;
  std::vector<const ExecutionProvider*> chosen;
  for (const auto& name : names.empty() ? default_providers() : names) {
    auto options_of = options.provider_options.find(name);
    providers.push_back(create_provider(name, options_of == options.provider_options.end()
                                                  ? ProviderOptions{}
                                                  : options_of->second));
    chosen.push_back(providers.back().get());
    planned.providers.push_back(chosen.back()->name());
  }
  if (chosen.empty()) throw InvalidArgument("no execution provider is available");
  // Functions without a kernel in any chosen provider (standard or model-local) run as their
  // bodies; graft's fused ops keep their kernels.
  ir::inline_functions(model, [&](const ir::Node& n, int since) {
    return std::any_of(chosen.begin(), chosen.end(), [&](const ExecutionProvider* p) {
      return p->registry().find_op(n.domain, n.op_type, since, &n) != nullptr;
    });
  });
  model.graph.topological_sort();
  ir::optimize(model, options.graph_optimization_level, cpu_constant_evaluator(model));
  if (options.graph_optimization_level >= 2) {
    // Elementwise chains that a device provider with the fused kernel runs become one node each.
    const std::vector<int> owners = partition(model, model.graph, chosen);
    ir::fuse_elementwise(model, [&](size_t i) {
      const ExecutionProvider* p = owners[i] < 0 ? nullptr : chosen[static_cast<size_t>(owners[i])];
      return p != nullptr && !p->allocator().on_host() &&
             p->registry().has_op(names::kDomain, ir::fused_elementwise_op(0), 1);
    });
  }
  if (options.graph_optimization_level >= kLayoutOptimizationLevel) {
    // Convolution chains on a host provider with the blocked kernels run in its blocked layout.
    const std::vector<int> owners = partition(model, model.graph, chosen);
    ir::convert_to_nchwc(model, [&](size_t i) {
      const ExecutionProvider* p = owners[i] < 0 ? nullptr : chosen[static_cast<size_t>(owners[i])];
      return p != nullptr && p->allocator().on_host() &&
             p->registry().has_op(names::kDomain, "NchwcConv", 1);
    });
    // Int8 convolution chains run channels-last, oneDNN's int8 layout.
    const std::vector<int> int8_owners = partition(model, model.graph, chosen);
    ir::convert_int8_to_nhwc(model, [&](size_t i) {
      const ExecutionProvider* p =
          int8_owners[i] < 0 ? nullptr : chosen[static_cast<size_t>(int8_owners[i])];
      return p != nullptr && p->allocator().on_host() &&
             p->registry().has_op(names::kDomain, "NhwcQLinearConv", 1);
    });
  }
  insert_device_copies(model, chosen);
  if (!options.optimized_model_filepath.empty())
    ir::save_model(model, options.optimized_model_filepath);
  planned.plan = std::make_unique<GraphPlan>(model.graph, PlanContext{model, chosen},
                                             std::vector<std::string>{});
  // The kernels keep their providers (streams, library handles): the plan owns them.
  planned.plan->own_providers(std::move(providers));
  return planned;
}

Value GraphPlan::host_readable(size_t i, const Value& v) const {
  if (!input_read_on_host_[i] || !v.is_tensor() || v.tensor().on_host()) return v;
  return Value(v.tensor().to_host());
}

std::vector<bool> GraphPlan::steps_for(const std::vector<size_t>& fetches) const {
  std::vector<bool> wanted_slot(num_slots_, false);
  for (size_t i : fetches) {
    const int s = output_slots_.at(i);
    if (s >= 0) wanted_slot[static_cast<size_t>(s)] = true;
  }
  std::vector<bool> needed(steps_.size(), false);
  for (size_t i = steps_.size(); i-- > 0;) {
    const Step& step = *steps_[i];
    bool wanted = false;
    for (int s : step.outputs) wanted = wanted || (s >= 0 && wanted_slot[static_cast<size_t>(s)]);
    if (!wanted) continue;
    needed[i] = true;
    for (const auto* reads : {&step.inputs, &step.implicit}) {
      for (int s : *reads) {
        if (s >= 0) wanted_slot[static_cast<size_t>(s)] = true;
      }
    }
  }
  return needed;
}

std::vector<Value> GraphPlan::run(const std::vector<Value>& inputs,
                                  const std::vector<const Value*>& outer, Profiler* profiler,
                                  const RunOptions& options,
                                  const std::vector<size_t>* fetches) const {
  const OutputsOnDevice outputs_on_device(this, options.outputs_on_device);
  std::vector<Value> slots(num_slots_);
  for (const auto& [s, v] : constants_) slots[static_cast<size_t>(s)] = v;
  std::vector<const Buffer*> foreign;
  for (size_t i = 0; i < outer_slots_.size() && i < outer.size(); ++i) {
    if (!outer[i]) continue;
    slots[static_cast<size_t>(outer_slots_[i])] = *outer[i];
    if (has_in_place_) collect_buffers(*outer[i], foreign);
  }
  for (size_t i = 0; i < input_slots_.size() && i < inputs.size(); ++i) {
    if (inputs[i].is_none()) continue;
    Value& slot = slots[static_cast<size_t>(input_slots_[i])];
    slot = host_readable(i, inputs[i]);
    if (has_in_place_) collect_buffers(slot, foreign);
  }
  if (fetches && options.only_execute_path_to_fetches && !parallel_) {
    const std::vector<bool> needed = steps_for(*fetches);
    return execute(slots, foreign, {}, profiler, options.terminate, &needed);
  }
  return execute(slots, foreign, {}, profiler, options.terminate);
}

std::vector<Value> GraphPlan::run_donated(std::vector<Value>& inputs,
                                          const std::vector<bool>& donated, Profiler* profiler,
                                          const RunOptions& options) const {
  const OutputsOnDevice outputs_on_device(this, options.outputs_on_device);
  std::vector<Value> slots(num_slots_);
  for (const auto& [s, v] : constants_) slots[static_cast<size_t>(s)] = v;
  std::vector<const Buffer*> foreign;
  // Donated inputs stay in their slots for the whole run, so a failure can hand them back.
  std::vector<bool> held(num_slots_, false);
  auto is_donated = [&](size_t i) { return i < donated.size() && donated[i]; };
  for (size_t i = 0; i < input_slots_.size() && i < inputs.size(); ++i) {
    if (inputs[i].is_none()) continue;
    const auto s = static_cast<size_t>(input_slots_[i]);
    if (is_donated(i)) {
      slots[s] = host_readable(i, inputs[i]);
      inputs[i] = Value();
      held[s] = true;
    } else {
      slots[s] = host_readable(i, inputs[i]);
      if (has_in_place_) collect_buffers(slots[s], foreign);
    }
  }
  try {
    return execute(slots, foreign, held, profiler, options.terminate);
  } catch (...) {
    for (size_t i = 0; i < input_slots_.size() && i < inputs.size(); ++i) {
      const auto s = static_cast<size_t>(input_slots_[i]);
      if (is_donated(i) && held[s]) inputs[i] = std::move(slots[s]);
    }
    throw;
  }
}

void GraphPlan::enable_parallel(int inter_op_threads, int intra_op_threads) {
  const std::unordered_set<int> keep(output_slots_.begin(), output_slots_.end());
  std::vector<int> producer(num_slots_, -1);
  std::vector<std::vector<int>> after(steps_.size());
  users_.assign(num_slots_, 0);
  for (size_t i = 0; i < steps_.size(); ++i) {
    Step& step = *steps_[i];
    std::vector<int> used = step.inputs;
    used.insert(used.end(), step.implicit.begin(), step.implicit.end());
    for (int s : used) {
      const int p = s < 0 ? -1 : producer[static_cast<size_t>(s)];
      if (p >= 0 && !contains(after[i], p)) after[i].push_back(p);
    }
    used.insert(used.end(), step.outputs.begin(), step.outputs.end());
    step.uses.clear();
    for (int s : used) {
      if (s < 0 || keep.count(s) || contains(step.uses, s)) continue;
      step.uses.push_back(s);
      ++users_[static_cast<size_t>(s)];
    }
    for (int s : step.outputs) {
      if (s >= 0) producer[static_cast<size_t>(s)] = static_cast<int>(i);
    }
  }
  const int threads = std::max(1, inter_op_threads);
  parallel_ = std::make_unique<ParallelExecutor>(std::move(after), threads,
                                                 std::max(1, intra_op_threads / threads));
}

void GraphPlan::enable_mem_pattern() {
  if (!patterns_) patterns_ = std::make_unique<MemoryPatterns>();
}

std::vector<std::pair<std::string, const ir::Node*>> GraphPlan::assignments() const {
  std::vector<std::pair<std::string, const ir::Node*>> result;
  result.reserve(steps_.size());
  for (const auto& step : steps_) result.emplace_back(step->provider, step->node);
  return result;
}

std::map<std::string, size_t> GraphPlan::planned_peak_bytes() const {
  return patterns_ ? patterns_->planned_peak_bytes() : std::map<std::string, size_t>{};
}

std::vector<Value> GraphPlan::execute(std::vector<Value>& slots, std::vector<const Buffer*> foreign,
                                      const std::vector<bool>& held, Profiler* profiler,
                                      const std::atomic<bool>* terminate,
                                      const std::vector<bool>* needed) const {
  std::sort(foreign.begin(), foreign.end());
  std::unique_ptr<RunMemory> memory;
  // A pruned run (`needed`) skips steps the memory pattern counts on: it allocates as it goes.
  if (patterns_ && !parallel_ && !needed) {
    std::vector<const Value*> inputs;
    for (int s : input_slots_) inputs.push_back(&slots[static_cast<size_t>(s)]);
    // Outputs left on the device outlive buffers that a run copying them back drops.
    memory = patterns_->start_run(inputs, static_cast<int>(steps_.size()),
                                  outputs_stay_on_device == this ? 1 : 0);
  }
  // An input's buffer may be overwritten when the run owns it (not among `foreign`: a donated
  // input or a value some kernel allocated) and no other Value shares it. Each planned output is
  // a Buffer of its own inside the arena, so the count says the same for it.
  auto writable = [&](const Value& v) {
    if (!v.is_tensor()) return false;
    const std::shared_ptr<Buffer>& buffer = v.tensor().buffer();
    return buffer && buffer.use_count() == 1 &&
           !std::binary_search(foreign.begin(), foreign.end(), buffer.get());
  };
  std::mutex profiler_mutex;
  // Nodes still finishing in the background (KernelContext::finish_later): their finish calls,
  // the step each came from, and per slot the index of the one that fills it (-1: none).
  struct Pending {
    std::function<void()> finish;
    const Step* step;
  };
  std::vector<Pending> pending;
  std::vector<int> pending_of;
  auto finish = [&](size_t k) {
    if (!pending[k].finish) return;
    auto call = std::move(pending[k].finish);
    pending[k].finish = nullptr;
    const int64_t start = profiler ? now_us() : 0;
    call();
    if (profiler) {
      const std::lock_guard<std::mutex> lock(profiler_mutex);
      const ir::Node* node = pending[k].step->node;
      profiler->events.push_back(
          {(node->name.empty() ? pending[k].step->desc : node->name) + "/wait",
           node->op_type + "Wait", start - profiler->origin_us, now_us() - start});
    }
  };
  auto wait_for = [&](int s) {
    if (s < 0 || pending_of.empty()) return;
    const int k = pending_of[static_cast<size_t>(s)];
    if (k >= 0) finish(static_cast<size_t>(k));
  };
  auto finish_all = [&](bool quietly) {
    for (size_t k = 0; k < pending.size(); ++k) {
      if (!quietly) {
        finish(k);
        continue;
      }
      try {
        finish(k);
      } catch (...) {
      }
    }
  };
  // Parallel mode: the steps still to use each slot, and the run's thread-local state on every
  // thread that runs a step.
  std::unique_ptr<std::atomic<int>[]> users;
  if (parallel_) {
    users = std::make_unique<std::atomic<int>[]>(num_slots_);
    for (size_t s = 0; s < num_slots_; ++s) users[s] = users_[s];
  }
  const GraphPlan* const stay_on_device = outputs_stay_on_device;
  // The caller's memory limit holds on every thread a step runs on (the parallel mode's too).
  const size_t memory_limit = thread_memory_limit();
  auto run_step = [&](size_t index) {
    const OutputsOnDevice on_this_thread(stay_on_device, stay_on_device != nullptr);
    const MemoryLimitScope limit_on_this_thread(memory_limit);
    if (terminate && terminate->load(std::memory_order_relaxed))
      throw Fail("Exiting due to terminate flag being set to true.");
    const auto& step = steps_[index];
    for (int s : step->inputs) wait_for(s);
    for (int s : step->implicit) wait_for(s);
    std::vector<const Value*> in;
    in.reserve(step->inputs.size());
    for (int s : step->inputs) in.push_back(s < 0 ? nullptr : &slots[static_cast<size_t>(s)]);
    std::vector<Value*> out;
    out.reserve(step->outputs.size());
    for (int s : step->outputs) out.push_back(s < 0 ? nullptr : &slots[static_cast<size_t>(s)]);
    std::vector<std::unique_ptr<PlanRunner>> runners;
    for (size_t k = 0; k < step->subplans.size(); ++k) {
      std::vector<const Value*> sub_outer;
      for (int idx : step->subplan_outer[k]) {
        sub_outer.push_back(&slots[static_cast<size_t>(step->implicit[static_cast<size_t>(idx)])]);
      }
      runners.push_back(std::make_unique<PlanRunner>(*step->subplans[k], std::move(sub_outer),
                                                     profiler, terminate));
    }
    std::function<SubgraphRunner&(const std::string&)> sub;
    if (!runners.empty()) {
      sub = [&](const std::string& attr) -> SubgraphRunner& {
        for (size_t k = 0; k < step->subgraph_attrs.size(); ++k) {
          if (step->subgraph_attrs[k] == attr) return *runners[k];
        }
        throw Fail(step->desc + ": has no graph attribute '" + attr + "'");
      };
    }
    KernelContext ctx(step->desc, std::move(in), std::move(out), std::move(sub), *step->allocator);
    if (memory) {
      ctx.set_output_memory(memory.get());
      memory->begin_step(static_cast<int>(index));
    }
    std::vector<int> reuse;
    if (!step->in_place.empty()) {
      reuse.assign(step->outputs.size(), -1);
      // In parallel another reader of the input may still be running.
      for (const auto& [o, j] : step->in_place) {
        const Value& input = slots[static_cast<size_t>(step->inputs[static_cast<size_t>(j)])];
        int& r = reuse[static_cast<size_t>(o)];
        if (r < 0 && !parallel_ && writable(input)) r = j;
      }
    }
    int64_t start = profiler ? now_us() : 0;
    try {
      if (step->in_place.empty()) {
        step->kernel->compute(ctx);
      } else {
        step->in_place_kernel->compute_in_place(ctx, reuse);
      }
    } catch (...) {
      rethrow_for_node(step->desc, &ctx);
    }
    if (profiler) {
      const std::lock_guard<std::mutex> lock(profiler_mutex);
      profiler->events.push_back({step->node->name.empty() ? step->desc : step->node->name,
                                  step->node->op_type, start - profiler->origin_us,
                                  now_us() - start});
    }
    if (auto later = ctx.take_finish(); later && parallel_) {
      later();
    } else if (later) {
      if (pending_of.empty()) pending_of.assign(num_slots_, -1);
      for (int s : step->outputs) {
        if (s >= 0) pending_of[static_cast<size_t>(s)] = static_cast<int>(pending.size());
      }
      pending.push_back({std::move(later), step.get()});
    }
    for (size_t k = 0; k < step->outputs.size(); ++k) {
      int s = step->outputs[k];
      if (s >= 0 && slots[static_cast<size_t>(s)].is_none()) {
        throw Fail(step->desc + ": produced no value for output " + std::to_string(k) + " ('" +
                   step->node->outputs[k] + "')");
      }
    }
    auto drop = [&](int s) {
      if (held.empty() || !held[static_cast<size_t>(s)]) slots[static_cast<size_t>(s)] = Value();
    };
    if (parallel_) {
      for (int s : step->uses) {
        if (--users[static_cast<size_t>(s)] == 0) drop(s);
      }
    } else {
      for (int s : step->release) drop(s);
    }
    if (memory) memory->end_step(static_cast<int>(index));
  };
  try {
    if (parallel_) {
      parallel_->run(run_step);
    } else {
      for (size_t index = 0; index < steps_.size(); ++index) {
        if (!needed || (*needed)[index]) run_step(index);
      }
    }
    finish_all(false);
  } catch (...) {
    // Nothing may still write into the run's buffers once the error leaves.
    finish_all(true);
    throw;
  }
  std::vector<Value> result;
  result.reserve(output_slots_.size());
  for (int s : output_slots_) result.push_back(slots[static_cast<size_t>(s)]);
  if (memory) memory->finish();
  return result;
}

}  // namespace graft
