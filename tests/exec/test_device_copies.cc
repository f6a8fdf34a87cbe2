// The copies at device boundaries (insert_device_copies), checked without a GPU: a test provider
// whose allocator reports device memory (host memory underneath) runs Relu, and its own
// MemcpyFromHost and MemcpyToHost kernels record every crossing. Each of its kernels checks that
// its inputs are in its memory; the CPU's checks are that host nodes and the caller only ever see
// host memory.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "exec/provider.h"
#include "exec/session.h"
#include "ir/model.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "tests/device_training.h"
#include "tests/model_builder.h"
#include "train/training_session.h"

namespace graft {
namespace {

class FakeDeviceMemory final : public Allocator {
 public:
  const char* name() const override { return "FakeDevice"; }
  void* allocate(size_t bytes) override {
    note_allocate(bytes);
    return std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
  }
  void release(void* ptr, size_t bytes) override {
    note_release(bytes);
    std::free(ptr);
  }
  bool on_host() const override { return false; }
};

FakeDeviceMemory& device_memory() {
  static FakeDeviceMemory* memory = new FakeDeviceMemory();
  return *memory;
}

int copies_in = 0;
int copies_out = 0;

bool on_device(const Tensor& t) { return t.buffer()->allocator() == &device_memory(); }

Tensor device_tensor(DType dtype, const Shape& shape) {
  return Tensor::empty(dtype, shape, device_memory());
}

class DeviceRelu final : public Kernel {
 public:
  explicit DeviceRelu(const KernelInfo& info) {
    if (info.constant_input(0)) info.fail("was handed a host constant");
  }
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (!on_device(x)) ctx.fail("input is not in device memory");
    Tensor y = device_tensor(x.dtype(), x.shape());
    for (int64_t i = 0; i < x.size(); ++i) y.data<float>()[i] = std::max(0.0f, x.data<float>()[i]);
    ctx.set_output(0, Value(std::move(y)));
  }
};

class FromHost final : public Kernel {
 public:
  explicit FromHost(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (on_device(x)) ctx.fail("copies a value that is already on the device");
    Tensor y = device_tensor(x.dtype(), x.shape());
    std::memcpy(y.raw(), x.raw(), x.nbytes());
    ++copies_in;
    ctx.set_output(0, Value(std::move(y)));
  }
};

class ToHost final : public Kernel {
 public:
  explicit ToHost(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (!on_device(x)) ctx.fail("copies a value that is not on the device");
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    std::memcpy(y.raw(), x.raw(), x.nbytes());
    ++copies_out;
  }
};

const KernelRegistry& fake_registry() {
  static const KernelRegistry registry = [] {
    KernelRegistry reg;
    reg.add({"", "Relu", 14, 1 << 30, {}, 0, make<DeviceRelu>});
    reg.add({"com.graft", "MemcpyFromHost", 1, 1 << 30, {}, 0, make<FromHost>});
    reg.add({"com.graft", "MemcpyToHost", 1, 1 << 30, {}, 0, make<ToHost>});
    return reg;
  }();
  return registry;
}

class FakeDeviceProvider : public ExecutionProvider {
 public:
  const char* name() const override { return "FakeDeviceProvider"; }
  std::vector<size_t> capability(const ir::Model& model, const ir::Graph& graph) const override {
    return supported_nodes(registry(), model, graph);
  }
  const KernelRegistry& registry() const override { return fake_registry(); }
  Allocator& allocator() const override { return device_memory(); }
};

std::unique_ptr<ExecutionProvider> make_fake(const ProviderOptions&) {
  return std::make_unique<FakeDeviceProvider>();
}

struct Registrar {
  Registrar() { register_provider("FakeDeviceProvider", 200, &make_fake, /*by_default=*/false); }
} registrar;

// r1 = Relu(x) [device]; s = r1 + b [CPU]; r2 = Relu(s) [device]; r3 = Relu(b) [device];
// t = r2 + r3 [CPU]. Outputs t, r2 (a device value) and r1 (read by the CPU too).
ir::Model chain() {
  test_util::ModelBuilder m("chain");
  m.input("x", std::vector<std::string>{"4"});
  m.initializer("b", {4}, [](int64_t i) { return static_cast<float>(i) - 1.5f; });
  m.node("Relu", {"x"}, "r1");
  m.node("Add", {"r1", "b"}, "s");
  m.node("Relu", {"s"}, "r2");
  m.node("Relu", {"b"}, "r3");
  m.node("Add", {"r2", "r3"}, "t");
  m.output("t", std::vector<std::string>{"4"});
  m.output("r2", std::vector<std::string>{"4"});
  m.output("r1", std::vector<std::string>{"4"});
  return m.build();
}

TEST(DeviceCopies, CopiesAtEveryHostDeviceBoundary) {
  SessionOptions options;
  options.graph_optimization_level = 0;
  InferenceSession session(chain(), options, {"FakeDeviceProvider", "CPUExecutionProvider"});
  copies_in = copies_out = 0;
  Tensor x(DType::Float, {4});
  const float xs[] = {-2.0f, -0.5f, 0.5f, 2.0f};
  std::memcpy(x.raw(), xs, sizeof(xs));
  std::vector<Value> out = session.run({}, {{"x", x}});
  // In: x, s, the initializer b. Out: r1 (for Add and as an output, one copy), r2 (for Add and
  // as an output, one copy), r3.
  EXPECT_EQ(copies_in, 3);
  EXPECT_EQ(copies_out, 3);
  const float b[] = {-1.5f, -0.5f, 0.5f, 1.5f};
  for (int i = 0; i < 4; ++i) {
    const float r1 = std::max(0.0f, xs[i]);
    const float r2 = std::max(0.0f, r1 + b[i]);
    EXPECT_EQ(out[0].tensor().data<float>()[i], r2 + std::max(0.0f, b[i])) << i;
    EXPECT_EQ(out[1].tensor().data<float>()[i], r2) << i;
    EXPECT_EQ(out[2].tensor().data<float>()[i], r1) << i;
  }
  for (const auto& v : out) EXPECT_FALSE(on_device(v.tensor()));
}

TEST(DeviceCopies, TheCopiesAreNodesOfTheSavedOptimizedModel) {
  const std::string path = ::testing::TempDir() + "/device_copies_optimized.onnx";
  SessionOptions options;
  options.graph_optimization_level = 0;
  options.optimized_model_filepath = path;
  InferenceSession session(chain(), options, {"FakeDeviceProvider", "CPUExecutionProvider"});
  Tensor x(DType::Float, {4});
  const float xs[] = {-2.0f, -0.5f, 0.5f, 2.0f};
  std::memcpy(x.raw(), xs, sizeof(xs));
  copies_in = copies_out = 0;
  std::vector<Value> on_device = session.run({}, {{"x", x}});
  // Every crossing is one of the graph's copy nodes.
  EXPECT_EQ(copies_in, 3);
  EXPECT_EQ(copies_out, 3);
  // The saved model passes ONNX's checker (load_model runs it), declares the copies as
  // functions, and runs on the CPU alone, where each copy is its Identity body.
  ir::Model saved = ir::load_model(path);
  int from_host = 0, to_host = 0;
  for (const auto& n : saved.graph.nodes) {
    from_host += n->op_type == "MemcpyFromHost";
    to_host += n->op_type == "MemcpyToHost";
  }
  EXPECT_EQ(from_host, 3);
  EXPECT_EQ(to_host, 3);
  EXPECT_EQ(saved.functions.size(), 2u);
  InferenceSession on_host(std::move(saved), options, {"CPUExecutionProvider"});
  std::vector<Value> out = on_host.run({}, {{"x", x}});
  ASSERT_EQ(out.size(), on_device.size());
  for (size_t k = 0; k < out.size(); ++k) {
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(out[k].tensor().data<float>()[i], on_device[k].tensor().data<float>()[i]);
  }
}

// r1 = Relu(x) on the device; an If whose branches read r1 from the outer scope: one copy to the
// host before the If, read by both branches.
TEST(DeviceCopies, ValuesNestedGraphsReadAreCopiedToTheHost) {
  onnx::ModelProto m;
  m.set_ir_version(10);
  m.add_opset_import()->set_version(18);
  auto* g = m.mutable_graph();
  g->set_name("nested");
  auto declare = [](onnx::ValueInfoProto* v, const std::string& name, int type) {
    v->set_name(name);
    v->mutable_type()->mutable_tensor_type()->set_elem_type(type);
  };
  declare(g->add_input(), "x", onnx::TensorProto::FLOAT);
  declare(g->add_input(), "c", onnx::TensorProto::BOOL);
  auto* relu = g->add_node();
  relu->set_op_type("Relu");
  relu->add_input("x");
  relu->add_output("r1");
  auto branch = [&](const char* name, const char* op) {
    auto* a = g->mutable_node(g->node_size() - 1)->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::GRAPH);
    auto* body = a->mutable_g();
    body->set_name(name);
    auto* n = body->add_node();
    n->set_op_type(op);
    n->add_input("r1");
    n->add_input("r1");
    n->add_output(std::string(name) + "_out");
    declare(body->add_output(), std::string(name) + "_out", onnx::TensorProto::FLOAT);
    return a;
  };
  auto* cond = g->add_node();
  cond->set_op_type("If");
  cond->add_input("c");
  cond->add_output("y");
  branch("then_branch", "Add");
  branch("else_branch", "Mul");
  declare(g->add_output(), "y", onnx::TensorProto::FLOAT);
  InferenceSession session(ir::load_model_from_bytes(m.SerializeAsString()), {},
                           {"FakeDeviceProvider", "CPUExecutionProvider"});
  Tensor x(DType::Float, {3});
  const float xs[] = {-1.0f, 2.0f, 3.0f};
  std::memcpy(x.raw(), xs, sizeof(xs));
  Tensor c(DType::Bool, {});
  *c.data<bool>() = false;
  copies_in = copies_out = 0;
  std::vector<Value> out = session.run({}, {{"x", x}, {"c", c}});
  EXPECT_EQ(copies_in, 1);
  EXPECT_EQ(copies_out, 1);
  for (int i = 0; i < 3; ++i) {
    const float r = std::max(0.0f, xs[i]);
    EXPECT_EQ(out[0].tensor().data<float>()[i], r * r) << i;
  }
}

// Data-parallel training (one rank: the AllReduce nodes copy) with the forward Relu on the
// device: the step's gradient and update graphs cross host and device, with state donated and
// updated in place on the host. The state after 5 steps equals host-only training's, bit for bit.
TEST(DeviceCopies, TrainingCrossesTheDeviceAndMatchesHostTraining) {
  const auto on_host = test_util::train_relu_regression({});
  copies_in = copies_out = 0;
  const auto crossing =
      test_util::train_relu_regression({"FakeDeviceProvider", "CPUExecutionProvider"});
  EXPECT_GT(copies_in, 0);
  EXPECT_GT(copies_out, 0);
  for (const auto& [name, host] : crossing.on_host) EXPECT_TRUE(host) << name;
  EXPECT_EQ(on_host.values, crossing.values);
  EXPECT_TRUE(on_host.values.count("w") && on_host.values.count("bias"));
}

TEST(DeviceCopies, ProvidersThatAreNotDefaultAreListedButNotUsedUnasked) {
  const auto available = available_providers();
  const auto defaults = default_providers();
  EXPECT_NE(std::find(available.begin(), available.end(), "FakeDeviceProvider"), available.end());
  EXPECT_EQ(std::find(defaults.begin(), defaults.end(), "FakeDeviceProvider"), defaults.end());
  InferenceSession session(chain());
  copies_in = copies_out = 0;
  session.run({}, {{"x", Tensor(DType::Float, {4})}});
  EXPECT_EQ(copies_in + copies_out, 0);
}

TEST(DeviceCopies, DeviceBuffersRefuseHostOnlyOperations) {
  Tensor t = device_tensor(DType::Float, {3});
  EXPECT_THROW(t.clone(), InvalidArgument);
  EXPECT_THROW(Buffer(DType::String, 2, device_memory()), InvalidArgument);
}

TEST(DeviceCopies, AskingForCudaWithoutADeviceNamesTheReason) {
  const auto available = available_providers();
  if (std::find(available.begin(), available.end(), "CUDAExecutionProvider") != available.end())
    GTEST_SKIP() << "a CUDA device is present";
  try {
    InferenceSession session(chain(), {}, {"CUDAExecutionProvider", "CPUExecutionProvider"});
    FAIL() << "the session was made without a CUDA device";
  } catch (const std::exception& e) {
    // Built without CUDA: the build option; built with it: why no device can be used.
    const std::string message = e.what();
    EXPECT_NE(message.find("CUDA"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace graft
