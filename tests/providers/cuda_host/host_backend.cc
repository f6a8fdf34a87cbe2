#include "tests/providers/cuda_host/host_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <random>
#include <set>
#include <type_traits>

#include "exec/plan.h"
#include "exec/tensor_proto.h"
#include "ir/names.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "onnx/shape_inference/implementation.h"

namespace graft::test_util {

void* HostDeviceMemory::allocate(size_t bytes) {
  note_allocate(bytes);
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void HostDeviceMemory::release(void* ptr, size_t bytes) {
  note_release(bytes);
  std::free(ptr);
}

HostDeviceMemory& host_device_memory() {
  static auto* memory = new HostDeviceMemory();
  return *memory;
}

bool in_host_device_memory(const Tensor& t) {
  return t.buffer() && t.buffer()->allocator() == &host_device_memory();
}

std::vector<void (*)(KernelRegistry&)>& host_families() {
  static std::vector<void (*)(KernelRegistry&)> families;
  return families;
}

namespace {

std::mutex ran_mutex;
std::set<std::string>& ran_ops() {
  static std::set<std::string> ops;
  return ops;
}

// Wraps a device kernel: every tensor input it reads on the device must be in device memory, and
// every tensor output it makes too; the op is recorded as run on the device.
class CheckedKernel final : public Kernel, public InPlaceKernel {
 public:
  CheckedKernel(const KernelInfo& info, std::unique_ptr<Kernel> inner, std::vector<int> host_inputs)
      : op_(info.op_type()), inner_(std::move(inner)), host_inputs_(std::move(host_inputs)) {
    in_place_ = dynamic_cast<InPlaceKernel*>(inner_.get());
  }
  void compute(KernelContext& ctx) override {
    check_inputs(ctx);
    inner_->compute(ctx);
    finish(ctx);
  }
  std::vector<std::pair<int, int>> in_place_pairs() const override {
    return in_place_ ? in_place_->in_place_pairs() : std::vector<std::pair<int, int>>{};
  }
  void compute_in_place(KernelContext& ctx, const std::vector<int>& reuse) override {
    check_inputs(ctx);
    in_place_->compute_in_place(ctx, reuse);
    finish(ctx);
  }

 private:
  void check_inputs(KernelContext& ctx) const {
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      if (!ctx.has_input(i) || !ctx.input_value(i).is_tensor()) continue;
      const bool host = std::count(host_inputs_.begin(), host_inputs_.end(), i) > 0;
      if (!host && !in_host_device_memory(ctx.input(i)))
        ctx.fail("input " + std::to_string(i) + " is not in device memory");
    }
  }
  void finish(KernelContext& ctx) const {
    std::lock_guard lock(ran_mutex);
    ran_ops().insert(op_);
    (void)ctx;
  }
  std::string op_;
  std::unique_ptr<Kernel> inner_;
  std::vector<int> host_inputs_;
  InPlaceKernel* in_place_ = nullptr;
};

// The copies into and out of the test provider's memory.
class FromHost final : public Kernel {
 public:
  explicit FromHost(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (in_host_device_memory(x)) {
      ctx.set_output(0, Value(x));
      return;
    }
    Tensor y = Tensor::empty(x.dtype(), x.shape(), host_device_memory());
    if (x.nbytes() > 0) std::memcpy(y.raw(), x.raw(), x.nbytes());
    ctx.set_output(0, Value(std::move(y)));
  }
};

class ToHost final : public Kernel {
 public:
  explicit ToHost(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (!in_host_device_memory(x)) ctx.fail("copies a value that is not in device memory");
    Tensor y = Tensor::empty(x.dtype(), x.shape());
    if (x.nbytes() > 0) std::memcpy(y.raw(), x.raw(), x.nbytes());
    ctx.set_output(0, Value(std::move(y)));
  }
};

const KernelRegistry& host_registry() {
  static const KernelRegistry registry = [] {
    KernelRegistry families;
    for (auto fn : host_families()) fn(families);
    KernelRegistry reg;
    for (KernelDef def : families.defs()) {
      KernelFactory inner = def.factory;
      std::vector<int> host_inputs = def.host_inputs;
      def.factory = [inner, host_inputs](const KernelInfo& info) -> std::unique_ptr<Kernel> {
        return std::make_unique<CheckedKernel>(info, inner(info), host_inputs);
      };
      reg.add(std::move(def));
    }
    reg.add({names::kDomain, "MemcpyFromHost", 1, 1 << 30, {}, 0, make<FromHost>});
    reg.add({names::kDomain, "MemcpyToHost", 1, 1 << 30, {}, 0, make<ToHost>});
    return reg;
  }();
  return registry;
}

class HostTestProvider final : public cuda::BackendProvider<HostBackend> {
 public:
  const char* name() const override { return kHostTestProvider; }
  std::vector<size_t> capability(const ir::Model& model, const ir::Graph& graph) const override {
    return supported_nodes(registry(), model, graph);
  }
  const KernelRegistry& registry() const override { return host_registry(); }
  Allocator& allocator() const override { return host_device_memory(); }
  HostBackend& backend() const override { return backend_; }

 private:
  mutable HostBackend backend_;
};

std::unique_ptr<ExecutionProvider> make_host_test_provider(const ProviderOptions& options) {
  check_provider_options(kHostTestProvider, options, {});
  return std::make_unique<HostTestProvider>();
}

struct Registrar {
  Registrar() {
    register_provider(kHostTestProvider, 300, &make_host_test_provider, /*by_default=*/false);
  }
} registrar;

double element(const Tensor& t, int64_t i) {
  return dispatch_numeric(t.dtype(), "compare", [&](auto tag) -> double {
    using T = typename decltype(tag)::type;
    return static_cast<double>(static_cast<T>(t.data<T>()[i]));
  });
}

}  // namespace

namespace {

bool on_cuda() {
  const char* device = std::getenv("GRAFT_TEST_DEVICE");
  return device != nullptr && std::string(device) == "cuda";
}

}  // namespace

const char* device_provider() { return on_cuda() ? "CUDAExecutionProvider" : kHostTestProvider; }

void expect_matches_cpu(const ir::Model& model, const std::map<std::string, Value>& feeds,
                        double rtol, double atol, const std::vector<std::string>& host_ops) {
  SessionOptions options;
  options.graph_optimization_level = 0;
  {
    std::lock_guard lock(ran_mutex);
    ran_ops().clear();
  }
  // On a GPU machine (scripts/gpu_check.sh) the same cases run on the CUDA provider, where
  // float32 results may differ from the CPU's by reassociation and fused multiply-adds: the
  // tolerance is ten times the host's (1e-4 for float32).
  const bool cuda = on_cuda();
  if (cuda) {
    rtol *= 10;
    atol *= 10;
    // Exact float32 products: TF32 (the provider's default, as onnxruntime's) keeps 10 bits.
    options.provider_options["CUDAExecutionProvider"] = {{"use_tf32", "0"}};
  }
  InferenceSession device(model.clone(), options, {device_provider(), "CPUExecutionProvider"});
  InferenceSession cpu(model.clone(), options, {"CPUExecutionProvider"});
  const std::vector<Value> got = device.run({}, feeds);
  const std::vector<Value> want = cpu.run({}, feeds);
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    const std::string name = device.outputs()[k].name;
    ASSERT_TRUE(got[k].is_tensor() && want[k].is_tensor()) << name;
    const Tensor& a = got[k].tensor();
    const Tensor& b = want[k].tensor();
    ASSERT_TRUE(a.buffer()->on_host()) << name << " was returned in device memory";
    ASSERT_EQ(dtype_name(a.dtype()), dtype_name(b.dtype())) << name;
    ASSERT_EQ(shape_to_string(a.shape()), shape_to_string(b.shape())) << name;
    const bool exact = !dtype_is_float(a.dtype());
    int reported = 0;
    for (int64_t i = 0; i < a.size() && reported < 5; ++i) {
      const double x = element(a, i);
      const double y = element(b, i);
      const bool same = exact ? x == y
                              : (std::isnan(x) && std::isnan(y)) || x == y ||
                                    std::fabs(x - y) <= atol + rtol * std::fabs(y);
      if (!same) {
        ADD_FAILURE() << name << "[" << i << "]: device " << x << ", CPU " << y;
        ++reported;
      }
    }
  }
  if (cuda) {
    // The CUDA provider's kernels are not wrapped: the copies into device memory show that the
    // nodes ran there.
    bool copied = false;
    for (const auto& node : device.model().graph.nodes)
      copied = copied || node->op_type == "MemcpyFromHost";
    EXPECT_TRUE(copied) << "nothing ran on the CUDA device";
    return;
  }
  std::lock_guard lock(ran_mutex);
  for (const auto& node : model.graph.nodes) {
    if (std::count(host_ops.begin(), host_ops.end(), node->op_type)) continue;
    EXPECT_TRUE(ran_ops().count(node->op_type)) << node->op_type << " did not run on the device";
  }
}

ir::Model op_model(const OpCase& c) {
  onnx::ModelProto m;
  m.set_ir_version(10);
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(c.opset);
  auto* graft_opset = m.add_opset_import();
  graft_opset->set_domain(names::kDomain);
  graft_opset->set_version(1);
  auto* g = m.mutable_graph();
  g->set_name(c.op);
  auto* node = g->add_node();
  const size_t colon = c.op.find(':');
  if (colon != std::string::npos) {
    node->set_domain(c.op.substr(0, colon));
    node->set_op_type(c.op.substr(colon + 1));
  } else {
    node->set_op_type(c.op);
  }
  node->set_name("node");
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const Tensor& t = c.inputs[i];
    if (!t.defined()) {
      node->add_input("");
      continue;
    }
    const std::string name = "in" + std::to_string(i);
    node->add_input(name);
    if (std::count(c.constant_inputs.begin(), c.constant_inputs.end(), static_cast<int>(i))) {
      tensor_to_proto(t, name, g->add_initializer());
      continue;
    }
    auto* v = g->add_input();
    v->set_name(name);
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(static_cast<int>(t.dtype()));
    for (int64_t d : t.shape()) tt->mutable_shape()->add_dim()->set_dim_value(d);
  }
  for (int k = 0; k < c.num_outputs; ++k) node->add_output("out" + std::to_string(k));
  if (c.attrs) c.attrs(*node);
  // The outputs' types, as ONNX infers them.
  onnx::shape_inference::InferShapes(m);
  for (int k = 0; k < c.num_outputs; ++k) {
    const std::string name = "out" + std::to_string(k);
    auto* out = g->add_output();
    out->set_name(name);
    for (const auto& v : g->value_info()) {
      if (v.name() == name) *out->mutable_type() = v.type();
    }
    if (!out->has_type()) throw std::runtime_error(c.op + ": ONNX infers no type for " + name);
  }
  g->clear_value_info();
  return ir::load_model_from_bytes(m.SerializeAsString());
}

std::map<std::string, Value> op_feeds(const OpCase& c) {
  std::map<std::string, Value> feeds;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.inputs[i].defined()) continue;
    if (std::count(c.constant_inputs.begin(), c.constant_inputs.end(), static_cast<int>(i)))
      continue;
    feeds["in" + std::to_string(i)] = Value(c.inputs[i]);
  }
  return feeds;
}

void expect_op_matches_cpu(const OpCase& c, double rtol, double atol) {
  SCOPED_TRACE(c.op);
  expect_matches_cpu(op_model(c), op_feeds(c), rtol, atol);
}

Tensor random_tensor(DType dtype, const Shape& shape, double lo, double hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> values(static_cast<size_t>(shape_size(shape)));
  std::uniform_real_distribution<double> u(lo, hi);
  for (double& v : values) {
    v = u(rng);
    if (dtype == DType::Bool)
      v = v > (lo + hi) / 2 ? 1 : 0;
    else if (!dtype_is_float(dtype))
      v = std::floor(v);
  }
  return tensor_of(dtype, shape, values);
}

Tensor tensor_of(DType dtype, const Shape& shape, const std::vector<double>& values) {
  Tensor t(dtype, shape);
  dispatch_numeric(dtype, "tensor_of", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (size_t i = 0; i < values.size(); ++i) {
      // Integer tensors hold values their type can: wider ones wrap, as a cast through int64 does
      // (converting a double the type cannot hold is undefined behaviour).
      if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        const double v = values[i];
        t.data<T>()[i] = v >= -9223372036854775808.0 && v < 9223372036854775808.0
                             ? static_cast<T>(static_cast<int64_t>(v))
                             : static_cast<T>(std::numeric_limits<int64_t>::min());
      } else {
        t.data<T>()[i] = static_cast<T>(values[i]);
      }
    }
  });
  return t;
}

void set_attr(onnx::NodeProto& n, const std::string& name, int64_t value) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void set_attr(onnx::NodeProto& n, const std::string& name, float value) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}

void set_attr(onnx::NodeProto& n, const std::string& name, const std::string& value) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

void set_attr(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& values) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void set_attr(onnx::NodeProto& n, const std::string& name, const std::vector<float>& values) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOATS);
  for (float v : values) a->add_floats(v);
}

}  // namespace graft::test_util
