// com.graft's fused optimizer updates on the device (providers/cuda/kernels/optimizer.h), compiled
// for the host, against the CPU provider's: the optimizer-step models optim::add_optimizer builds,
// two steps each (the first and a later update differ in SGD's momentum and the bias
// corrections), with and without global-norm clipping, float and double, one and several
// launches; and the in-place path, where every new tensor is written into its input's buffer.
#include <gtest/gtest.h>

#include <cstring>

#include "exec/tensor_proto.h"
#include "ir/names.h"
#include "onnx/onnx_pb.h"
#include "optim/optimizer.h"
#include "providers/cuda/kernels/optimizer.h"
#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {
namespace {

const HostFamily family(&cuda::register_optimizer<HostBackend>);

using optim::Kind;
using optim::OptimizerConfig;

std::string param_name(size_t i) { return "p" + std::to_string(i); }

// The update of `params` (initializers p0, p1, ...) as optim builds it: inputs graft.lr,
// graft.step, gradient/p<i>, the parameters and their states; outputs p<i>.new and the states'.
ir::Model step_model(const std::vector<Tensor>& params, const OptimizerConfig& config) {
  ir::Model forward;
  forward.ir_version = 10;
  forward.opset_imports[""] = 18;
  std::vector<std::string> names;
  for (size_t i = 0; i < params.size(); ++i) {
    names.push_back(param_name(i));
    auto proto = std::make_shared<onnx::TensorProto>();
    tensor_to_proto(params[i], names.back(), proto.get());
    forward.graph.initializers.push_back(proto);
  }
  return optim::add_optimizer(optim::gradients_as_inputs(forward, names), names, config);
}

std::map<std::string, Value> step_feeds(const std::vector<Tensor>& params, int64_t step,
                                        uint64_t seed) {
  std::map<std::string, Value> feeds = {
      {names::kLearningRate, Value(tensor_of(DType::Float, {}, {0.05}))},
      {names::kStep, Value(tensor_of(DType::Int64, {}, {static_cast<double>(step)}))}};
  for (size_t i = 0; i < params.size(); ++i) {
    feeds[names::kGradientPrefix + param_name(i)] =
        Value(random_tensor(params[i].dtype(), params[i].shape(), -2, 2, seed + i));
  }
  return feeds;
}

// The nodes besides the update that the step model holds (gradient pass-through, the step count).
const std::vector<std::string> kHostOps = {"Identity", "Constant", "Add", "Reshape"};

// Two steps on the device and on the CPU; the second starts from the CPU's first.
void expect_two_steps_match(const std::vector<Tensor>& params, const OptimizerConfig& config) {
  SCOPED_TRACE(std::string(optim::kind_name(config.kind)) + " max_grad_norm " +
               std::to_string(config.max_grad_norm));
  const ir::Model model = step_model(params, config);
  std::map<std::string, Value> feeds = step_feeds(params, 0, 10);
  expect_matches_cpu(model, feeds, 1e-5, 1e-6, kHostOps);

  SessionOptions options;
  options.graph_optimization_level = 0;
  InferenceSession cpu(model.clone(), options, {"CPUExecutionProvider"});
  const std::vector<Value> first = cpu.run({}, feeds);
  std::map<std::string, Value> next = step_feeds(params, 1, 20);
  const std::string suffix = names::kNewSuffix;
  for (size_t k = 0; k < first.size(); ++k) {
    const std::string& name = cpu.outputs()[k].name;
    if (name.ends_with(suffix) && name != std::string(names::kStep) + suffix)
      next[name.substr(0, name.size() - suffix.size())] = first[k];
  }
  expect_matches_cpu(model, next, 1e-5, 1e-6, kHostOps);
}

std::vector<Tensor> mixed_params() {
  return {random_tensor(DType::Float, {5, 7}, -1, 1, 1),
          random_tensor(DType::Float, {7}, -1, 1, 2),
          random_tensor(DType::Float, {3000, 3}, -1, 1, 3),  // three rows of the norm sums
          random_tensor(DType::Float, {}, -1, 1, 4),
          random_tensor(DType::Double, {4, 4}, -1, 1, 5),
          random_tensor(DType::Float, {2, 1, 3}, -1, 1, 6)};
}

OptimizerConfig config_of(Kind kind, float max_grad_norm) {
  OptimizerConfig c;
  c.kind = kind;
  c.max_grad_norm = max_grad_norm;
  c.weight_decay = 0.01f;
  return c;
}

// Clipping at 50 scales the gradients of mixed_params (norm about 110) by about 0.45. A far smaller
// factor would make weight decay cancel the clipped gradient in many elements, where the CPU
// kernel's fused multiply-adds (graft_cpu is built for x86-64-v3) round differently from the
// host-compiled kernel's separate ones, beyond 1e-5 after RMSprop's division.
TEST(CudaHostOptimizer, EveryUpdateMatchesCpuOverTwoSteps) {
  for (float max_norm : {0.0f, 50.0f}) {
    for (Kind kind : {Kind::SGD, Kind::Adam, Kind::AdamW, Kind::Adagrad, Kind::RMSprop, Kind::LAMB})
      expect_two_steps_match(mixed_params(), config_of(kind, max_norm));
  }
}

TEST(CudaHostOptimizer, UpdateVariantsMatchCpu) {
  OptimizerConfig momentum = config_of(Kind::SGD, 0.0f);
  momentum.momentum = 0.9f;
  momentum.dampening = 0.1f;
  expect_two_steps_match(mixed_params(), momentum);
  OptimizerConfig nesterov = config_of(Kind::SGD, 1.0f);
  nesterov.momentum = 0.9f;
  nesterov.nesterov = true;
  expect_two_steps_match(mixed_params(), nesterov);
  OptimizerConfig adagrad = config_of(Kind::Adagrad, 0.0f);
  adagrad.lr_decay = 0.1f;
  expect_two_steps_match(mixed_params(), adagrad);
  OptimizerConfig centered = config_of(Kind::RMSprop, 0.0f);
  centered.centered = true;
  centered.momentum = 0.5f;
  expect_two_steps_match(mixed_params(), centered);
  OptimizerConfig rms_momentum = config_of(Kind::RMSprop, 0.0f);
  rms_momentum.momentum = 0.5f;
  expect_two_steps_match(mixed_params(), rms_momentum);
}

TEST(CudaHostOptimizer, ManyTensorsTakeSeveralLaunches) {
  std::vector<Tensor> params;
  for (int i = 0; i < 2 * cuda::kTensorsPerLaunch + 5; ++i)
    params.push_back(random_tensor(DType::Float, {1 + i % 7, 3}, -1, 1, 100 + i));
  expect_two_steps_match(params, config_of(Kind::Adam, 0.5f));
  expect_two_steps_match(params, config_of(Kind::LAMB, 0.0f));
}

// ---------------------------------------------------------------------------------------------
// The in-place path, kernel by kernel: the device kernel writes every new tensor into its input's
// buffer, over two steps, and agrees with the CPU kernel computing into new buffers.

Tensor in_device_memory(const Tensor& t) {
  Tensor d = Tensor::empty(t.dtype(), t.shape(), host_device_memory());
  if (t.nbytes() > 0) std::memcpy(d.raw(), t.raw(), t.nbytes());
  return d;
}

ir::Attribute float_attribute(const std::string& name, float value) {
  auto proto = std::make_shared<onnx::AttributeProto>();
  proto->set_name(name);
  proto->set_type(onnx::AttributeProto::FLOAT);
  proto->set_f(value);
  return {name, proto, {}};
}

std::unique_ptr<Kernel> build(const KernelRegistry& registry, const ir::Node& node,
                              const ExecutionProvider* provider) {
  std::vector<DType> dtypes(node.inputs.size(), DType::Undefined);
  const KernelDef* def = registry.find(node.domain, node.op_type, 1, dtypes);
  if (def == nullptr) throw std::runtime_error("no kernel for " + node.op_type);
  KernelInfo info(node, 1, dtypes, std::vector<const Tensor*>(node.inputs.size(), nullptr),
                  provider);
  return def->factory(info);
}

// Runs `kernel` on `inputs`; with `in_place`, every output may take its input's buffer.
std::vector<Value> run_kernel(Kernel& kernel, const std::string& desc,
                              const std::vector<Value>& inputs, int outputs, Allocator& allocator,
                              bool in_place) {
  std::vector<const Value*> in;
  for (const Value& v : inputs) in.push_back(&v);
  std::vector<Value> out(static_cast<size_t>(outputs));
  std::vector<Value*> out_ptrs;
  for (Value& v : out) out_ptrs.push_back(&v);
  KernelContext ctx(desc, in, out_ptrs, nullptr, allocator);
  if (!in_place) {
    kernel.compute(ctx);
    return out;
  }
  auto* updater = dynamic_cast<InPlaceKernel*>(&kernel);
  if (updater == nullptr) throw std::runtime_error("the kernel does not update in place");
  std::vector<int> reuse(static_cast<size_t>(outputs), -1);
  for (const auto& [o, j] : updater->in_place_pairs()) reuse[static_cast<size_t>(o)] = j;
  updater->compute_in_place(ctx, reuse);
  return out;
}

void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (int64_t i = 0; i < got.size(); ++i) {
    const double a = got.scalar_as_double(i), b = want.scalar_as_double(i);
    ASSERT_NEAR(a, b, 1e-6 + 1e-5 * std::fabs(b)) << what << "[" << i << "]";
  }
}

TEST(CudaHostOptimizer, UpdatesInPlaceOverTwoSteps) {
  for (const char* op : {"AdamUpdate", "LAMBUpdate", "SGDUpdate"}) {
    SCOPED_TRACE(op);
    const int slots = std::string(op) == "SGDUpdate" ? 1 : 2;
    const std::vector<Shape> shapes = {{6, 5}, {5000}, {3}};
    const auto n = static_cast<int>(shapes.size());
    ir::Node node;
    node.op_type = op;
    node.domain = names::kDomain;
    node.name = "update";
    node.inputs = {"lr", "step"};
    for (int group = 0; group < 2 + slots; ++group) {
      for (int i = 0; i < n; ++i) node.inputs.push_back("in" + std::to_string(group * n + i));
    }
    for (int o = 0; o < (1 + slots) * n; ++o) node.outputs.push_back("out" + std::to_string(o));
    node.attributes = {float_attribute("max_grad_norm", 0.3f), float_attribute("momentum", 0.9f)};

    std::unique_ptr<ExecutionProvider> provider = create_provider(kHostTestProvider, {});
    std::unique_ptr<Kernel> device = build(provider->registry(), node, provider.get());
    std::unique_ptr<Kernel> cpu = build(cpu_kernel_registry(), node, nullptr);

    // Parameters, then states (zero on the first step, as optim's initializers).
    std::vector<Tensor> state;
    for (int i = 0; i < n; ++i) state.push_back(random_tensor(DType::Float, shapes[i], -1, 1, i));
    for (int s = 0; s < slots; ++s) {
      for (int i = 0; i < n; ++i) state.push_back(Tensor(DType::Float, shapes[i]));
    }
    std::vector<Tensor> on_device;
    for (const Tensor& t : state) on_device.push_back(in_device_memory(t));
    for (int64_t step = 0; step < 2; ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      std::vector<Tensor> grads;
      for (int i = 0; i < n; ++i)
        grads.push_back(random_tensor(DType::Float, shapes[i], -3, 3, 50 + 10 * step + i));
      auto inputs = [&](const std::vector<Tensor>& tensors, bool device_grads) {
        std::vector<Value> v = {Value(tensor_of(DType::Float, {}, {0.01})),
                                Value(tensor_of(DType::Int64, {}, {static_cast<double>(step)}))};
        for (int i = 0; i < n; ++i) v.push_back(Value(tensors[static_cast<size_t>(i)]));
        for (const Tensor& g : grads) v.push_back(Value(device_grads ? in_device_memory(g) : g));
        for (size_t k = static_cast<size_t>(n); k < tensors.size(); ++k)
          v.push_back(Value(tensors[k]));
        return v;
      };
      const std::string desc = node.describe();
      const std::vector<Value> want =
          run_kernel(*cpu, desc, inputs(state, false), (1 + slots) * n, cpu_allocator(), false);
      const std::vector<Value> got = run_kernel(*device, desc, inputs(on_device, true),
                                                (1 + slots) * n, host_device_memory(), true);
      for (int o = 0; o < (1 + slots) * n; ++o) {
        const Tensor& out = got[static_cast<size_t>(o)].tensor();
        EXPECT_EQ(out.raw(), on_device[static_cast<size_t>(o)].raw())
            << "output " << o << " is not in its input's buffer";
        expect_close(out, want[static_cast<size_t>(o)].tensor(), "output " + std::to_string(o));
        state[static_cast<size_t>(o)] = want[static_cast<size_t>(o)].tensor();
      }
    }
  }
}

}  // namespace
}  // namespace graft::test_util
