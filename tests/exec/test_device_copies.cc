// The copies at device boundaries (insert_device_copies), checked without a GPU on the fake
// device of tests/exec/fake_device.h, which counts every crossing and whose memory the CPU cannot
// touch: a host node or a caller handed a device value crashes the test.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "exec/provider.h"
#include "exec/session.h"
#include "ir/model.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "tests/device_training.h"
#include "tests/exec/fake_device.h"
#include "tests/model_builder.h"
#include "train/training_session.h"

namespace graft {
namespace {

using test_util::fake_device_log;
using test_util::fake_device_memory;
using test_util::kFakeDevice;
using test_util::on_fake_device;
using test_util::reset_fake_device;

Tensor floats(const Shape& shape, const std::vector<float>& values) {
  Tensor t(DType::Float, shape);
  std::memcpy(t.raw(), values.data(), values.size() * sizeof(float));
  return t;
}

// r1 = Relu(x) [device]; s = r1 + b [CPU]; r2 = Relu(s) [device]; r3 = Relu(b) [device];
// t = r2 + r3 [CPU]. Outputs t, r2 (a device value) and r1 (read by the CPU too). With
// `overridable_b` the initializer b is also an input, which a run may feed.
ir::Model chain(bool overridable_b = false) {
  test_util::ModelBuilder m("chain");
  m.input("x", std::vector<std::string>{"4"});
  if (overridable_b) m.input("b", std::vector<std::string>{"4"});
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

const std::vector<std::string> kOnDevice = {kFakeDevice, "CPUExecutionProvider"};

SessionOptions unoptimized() {
  SessionOptions options;
  options.graph_optimization_level = 0;
  return options;
}

// The outputs of chain() for x, computed here.
void expect_chain_outputs(const std::vector<Value>& out, const std::vector<float>& xs) {
  ASSERT_EQ(out.size(), 3u);
  for (int i = 0; i < 4; ++i) {
    const float b = static_cast<float>(i) - 1.5f;
    const float r1 = std::max(0.0f, xs[static_cast<size_t>(i)]);
    const float r2 = std::max(0.0f, r1 + b);
    EXPECT_EQ(out[0].tensor().data<float>()[i], r2 + std::max(0.0f, b)) << i;
    EXPECT_EQ(out[1].tensor().data<float>()[i], r2) << i;
    EXPECT_EQ(out[2].tensor().data<float>()[i], r1) << i;
  }
}

const std::vector<float> kXs = {-2.0f, -0.5f, 0.5f, 2.0f};

TEST(DeviceCopies, CopiesAtEveryHostDeviceBoundary) {
  InferenceSession session(chain(), unoptimized(), kOnDevice);
  reset_fake_device();
  std::vector<Value> out = session.run({}, {{"x", floats({4}, kXs)}});
  // In: x and s (the initializer b went once, when the session was made). Out: r1 (for Add and as
  // an output, one copy), r2 (for Add and as an output, one copy), r3.
  EXPECT_EQ(fake_device_log().copies_in, 2);
  EXPECT_EQ(fake_device_log().copies_out, 3);
  EXPECT_EQ(fake_device_log().ran["Relu"], 3);
  expect_chain_outputs(out, kXs);
  for (const auto& v : out) EXPECT_TRUE(v.tensor().on_host());
}

TEST(DeviceCopies, TheCopiesAreNodesOfTheSavedOptimizedModel) {
  const std::string path = ::testing::TempDir() + "/device_copies_optimized.onnx";
  SessionOptions options = unoptimized();
  options.optimized_model_filepath = path;
  reset_fake_device();
  InferenceSession session(chain(), options, kOnDevice);
  const Tensor x = floats({4}, kXs);
  std::vector<Value> on_device = session.run({}, {{"x", x}});
  // Every crossing is one of the graph's copy nodes: b's when the session was made, x's and s's
  // in the run.
  EXPECT_EQ(fake_device_log().copies_in, 3);
  EXPECT_EQ(fake_device_log().copies_out, 3);
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

// b is a weight the device reads: it is copied when the session is made, never in a run. An
// initializer that is also an input may be fed per run, so its copy stays in the run.
TEST(DeviceCopies, ConstantsAreCopiedToTheDeviceOnce) {
  reset_fake_device();
  InferenceSession session(chain(), unoptimized(), kOnDevice);
  EXPECT_EQ(fake_device_log().copies_in, 1);
  for (int run = 0; run < 2; ++run)
    expect_chain_outputs(session.run({}, {{"x", floats({4}, kXs)}}), kXs);
  EXPECT_EQ(fake_device_log().copies_in, 1 + 2 * 2);

  reset_fake_device();
  InferenceSession overridable(chain(/*overridable_b=*/true), unoptimized(), kOnDevice);
  EXPECT_EQ(fake_device_log().copies_in, 0);
  for (int run = 0; run < 2; ++run)
    expect_chain_outputs(overridable.run({}, {{"x", floats({4}, kXs)}}), kXs);
  EXPECT_EQ(fake_device_log().copies_in, 2 * 3);
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
  InferenceSession session(ir::load_model_from_bytes(m.SerializeAsString()), {}, kOnDevice);
  const float xs[] = {-1.0f, 2.0f, 3.0f};
  Tensor c(DType::Bool, {});
  *c.data<bool>() = false;
  reset_fake_device();
  std::vector<Value> out = session.run({}, {{"x", floats({3}, {xs[0], xs[1], xs[2]})}, {"c", c}});
  EXPECT_EQ(fake_device_log().copies_in, 1);
  EXPECT_EQ(fake_device_log().copies_out, 1);
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
  reset_fake_device();
  const auto crossing = test_util::train_relu_regression(kOnDevice);
  EXPECT_GT(fake_device_log().copies_in, 0);
  EXPECT_GT(fake_device_log().copies_out, 0);
  for (const auto& [name, host] : crossing.on_host) EXPECT_TRUE(host) << name;
  EXPECT_EQ(on_host.values, crossing.values);
  EXPECT_TRUE(on_host.values.count("w") && on_host.values.count("bias"));
}

TEST(DeviceCopies, ProvidersThatAreNotDefaultAreListedButNotUsedUnasked) {
  const auto available = available_providers();
  const auto defaults = default_providers();
  EXPECT_NE(std::find(available.begin(), available.end(), "FakeDeviceProvider"), available.end());
  EXPECT_EQ(std::find(defaults.begin(), defaults.end(), "FakeDeviceProvider"), defaults.end());
  reset_fake_device();
  InferenceSession session(chain());
  session.run({}, {{"x", Tensor(DType::Float, {4})}});
  EXPECT_EQ(fake_device_log().copies_in + fake_device_log().copies_out, 0);
  EXPECT_TRUE(fake_device_log().ran.empty());
}

TEST(DeviceCopies, DeviceBuffersRefuseHostOnlyOperations) {
  Tensor t = Tensor::empty(DType::Float, {3}, fake_device_memory());
  EXPECT_THROW(t.clone(), InvalidArgument);
  EXPECT_THROW(Buffer(DType::String, 2, fake_device_memory()), InvalidArgument);
  Tensor words(DType::String, {1});
  EXPECT_THROW(words.to(fake_device_memory()), InvalidArgument);
}

// Tensor::to and to_host move a tensor through the allocators' copies, and hand back the tensor
// itself where it already is.
TEST(DeviceCopies, TensorsMoveBetweenHostAndDeviceMemory) {
  const Tensor host = floats({2, 2}, {1.5f, -2.0f, 3.25f, 0.0f});
  const Tensor device = host.to(fake_device_memory());
  EXPECT_TRUE(on_fake_device(device));
  EXPECT_FALSE(device.on_host());
  EXPECT_EQ(device.shape(), host.shape());
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(test_util::device_elements<float>(device)[i], host.data<float>()[i]);
  EXPECT_EQ(device.to(fake_device_memory()).buffer(), device.buffer());
  EXPECT_EQ(host.to_host().buffer(), host.buffer());
  EXPECT_EQ(host.to(cpu_allocator()).buffer(), host.buffer());
  const Tensor back = device.to_host();
  EXPECT_TRUE(back.on_host());
  EXPECT_NE(back.buffer(), host.buffer());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(back.data<float>()[i], host.data<float>()[i]);
}

// Device memory whose allocator has no copies: moving a tensor there says so.
class MemoryWithoutCopies final : public Allocator {
 public:
  const char* name() const override { return "Uncopyable"; }
  void* allocate(size_t bytes) override { return cpu_allocator().allocate(bytes); }
  void release(void* ptr, size_t bytes) override { cpu_allocator().release(ptr, bytes); }
  bool on_host() const override { return false; }
};

TEST(DeviceCopies, AnAllocatorWithoutCopiesIsNamed) {
  MemoryWithoutCopies memory;
  try {
    (void)floats({1}, {1.0f}).to(memory);
    FAIL() << "the copy went through";
  } catch (const NotImplemented& e) {
    EXPECT_NE(std::string(e.what()).find("Uncopyable"), std::string::npos) << e.what();
  }
}

// A feed already in device memory goes to the device kernels as it is; where a host node reads
// it, the run starts from a host copy.
TEST(DeviceCopies, FeedsAlreadyOnTheDeviceAreNotCopiedIn) {
  InferenceSession session(chain(), unoptimized(), kOnDevice);
  reset_fake_device();
  std::vector<Value> out = session.run({}, {{"x", floats({4}, kXs).to(fake_device_memory())}});
  EXPECT_EQ(fake_device_log().copies_in, 1);  // s
  expect_chain_outputs(out, kXs);

  // y = x + b on the host, z = Relu(x) on the device.
  test_util::ModelBuilder m("shared_feed");
  m.input("x", std::vector<std::string>{"4"});
  m.initializer("b", {4}, [](int64_t i) { return static_cast<float>(i); });
  m.node("Add", {"x", "b"}, "y");
  m.node("Relu", {"x"}, "z");
  m.output("y", std::vector<std::string>{"4"});
  m.output("z", std::vector<std::string>{"4"});
  InferenceSession shared(m.build(), unoptimized(), kOnDevice);
  reset_fake_device();
  out = shared.run({}, {{"x", floats({4}, kXs).to(fake_device_memory())}});
  // The Add reads x in host memory, which the Relu's copy then takes in again.
  EXPECT_EQ(fake_device_log().copies_in, 1);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(out[0].tensor().data<float>()[i],
              kXs[static_cast<size_t>(i)] + static_cast<float>(i));
    EXPECT_EQ(out[1].tensor().data<float>()[i], std::max(0.0f, kXs[static_cast<size_t>(i)]));
  }
}

// y = Relu(x) is only an output; z = Relu(x) is an output the host's Add reads too. Asked to,
// a run leaves y on the device; z comes back through the copy the Add needs anyway.
TEST(DeviceCopies, OutputsStayOnTheDeviceWhenTheRunAsks) {
  test_util::ModelBuilder m("device_outputs");
  m.input("x", std::vector<std::string>{"4"});
  m.node("Relu", {"x"}, "y");
  m.node("Relu", {"x"}, "z");
  m.node("Add", {"z", "z"}, "w");
  m.output("y", std::vector<std::string>{"4"});
  m.output("z", std::vector<std::string>{"4"});
  m.output("w", std::vector<std::string>{"4"});
  InferenceSession session(m.build(), unoptimized(), kOnDevice);
  const Tensor x = floats({4}, kXs);
  auto expect_values = [&](const std::vector<Value>& out) {
    ASSERT_EQ(out.size(), 3u);
    for (int i = 0; i < 4; ++i) {
      const float r = std::max(0.0f, kXs[static_cast<size_t>(i)]);
      EXPECT_EQ(out[0].tensor().to_host().data<float>()[i], r) << i;
      EXPECT_EQ(out[1].tensor().data<float>()[i], r) << i;
      EXPECT_EQ(out[2].tensor().data<float>()[i], r + r) << i;
    }
  };

  reset_fake_device();
  std::vector<Value> out = session.run({}, {{"x", x}}, RunOptions{.outputs_on_device = true});
  EXPECT_TRUE(on_fake_device(out[0].tensor()));
  EXPECT_TRUE(out[1].tensor().on_host());
  EXPECT_TRUE(out[2].tensor().on_host());
  EXPECT_EQ(fake_device_log().copies_out, 1);
  expect_values(out);

  // The next run without the option is back to host outputs.
  reset_fake_device();
  out = session.run({}, {{"x", x}});
  for (const auto& v : out) EXPECT_TRUE(v.tensor().on_host());
  EXPECT_EQ(fake_device_log().copies_out, 2);
  expect_values(out);

  // A device output fed back in goes to the device kernels as it is.
  reset_fake_device();
  out = session.run({}, {{"x", session.run({}, {{"x", x}}, {.outputs_on_device = true})[0]}},
                    {.outputs_on_device = true});
  EXPECT_EQ(fake_device_log().copies_in, 1);
  expect_values(out);
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
