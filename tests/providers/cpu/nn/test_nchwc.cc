// The blocked-layout pass (ir/transforms/nchwc.cc) on its own, and under a session whose first
// provider is a device: only the nodes the CPU provider runs change layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "exec/session.h"
#include "ir/serialize.h"
#include "ir/transforms/nchwc.h"
#include "tests/exec/fake_device.h"
#include "tests/model_builder.h"

namespace graft {
namespace {

// y = Conv(Relu(Conv(x, w1) + b1), w2): 8 -> 16 -> 16 channels on 6x6 images.
ir::Model conv_relu_conv() {
  test_util::ModelBuilder m("conv_relu_conv", 17);
  m.input("x", std::vector<std::string>{"N", "8", "6", "6"});
  m.output("y", std::vector<std::string>{"N", "16", "6", "6"});
  m.initializer("w1", {16, 8, 3, 3}, [](int64_t i) { return std::sin(0.37f * i) * 0.2f; });
  m.initializer("b1", {16}, [](int64_t i) { return 0.05f * i - 0.3f; });
  m.initializer("w2", {16, 16, 1, 1}, [](int64_t i) { return std::cos(0.11f * i) * 0.3f; });
  auto* c1 = m.node("Conv", {"x", "w1", "b1"}, "c1");
  c1->add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("pads");
    a.set_type(onnx::AttributeProto::INTS);
    for (int k = 0; k < 4; ++k) a.add_ints(1);
    return a;
  }());
  m.node("Relu", {"c1"}, "r1");
  m.node("Conv", {"r1", "w2"}, "y");
  return m.build();
}

std::vector<std::string> op_types(const ir::Model& model) {
  std::vector<std::string> ops;
  for (const auto& n : model.graph.nodes) ops.push_back(n->op_type);
  return ops;
}

TEST(NchwcPass, AChainGetsReordersAtItsEndsAndTheActivationFolded) {
  ir::Model model = conv_relu_conv();
  EXPECT_EQ(ir::convert_to_nchwc(model, [](size_t) { return true; }), 2);
  EXPECT_EQ(op_types(model),
            (std::vector<std::string>{"ReorderInput", "NchwcConv", "NchwcConv", "ReorderOutput"}));
  EXPECT_EQ(model.graph.nodes[1]->find_attr("activation")->proto->s(), "Relu");
  EXPECT_EQ(model.graph.nodes.back()->outputs[0], "y");
  EXPECT_EQ(model.graph.nodes.back()->find_attr("channels")->proto->i(), 16);
}

TEST(NchwcPass, NodesNoBlockedProviderRunsStayAsTheyAre) {
  ir::Model model = conv_relu_conv();
  EXPECT_EQ(ir::convert_to_nchwc(model, [](size_t) { return false; }), 0);
  EXPECT_EQ(op_types(model), (std::vector<std::string>{"Conv", "Relu", "Conv"}));
  // The Relu runs elsewhere: each conv is a chain of its own.
  EXPECT_EQ(ir::convert_to_nchwc(model, [](size_t i) { return i != 1; }), 2);
  EXPECT_EQ(op_types(model),
            (std::vector<std::string>{"ReorderInput", "NchwcConv", "ReorderOutput", "Relu",
                                      "ReorderInput", "NchwcConv", "ReorderOutput"}));
}

Tensor input() {
  Tensor x(DType::Float, {2, 8, 6, 6});
  for (int64_t i = 0; i < x.size(); ++i) x.data<float>()[i] = std::cos(0.013f * i * i);
  return x;
}

void expect_near(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got.data<float>()[i], want.data<float>()[i], 1e-4f) << "element " << i;
}

TEST(NchwcPass, ADeviceProviderFirstKeepsItsNodesPlain) {
  SessionOptions plain;
  plain.graph_optimization_level = 1;
  InferenceSession reference(conv_relu_conv(), plain, {"CPUExecutionProvider"});
  const Tensor want = reference.run({}, {{"x", Value(input())}})[0].tensor();

  SessionOptions all;
  all.optimized_model_filepath = ::testing::TempDir() + "nchwc_device_first.onnx";
  InferenceSession cpu(conv_relu_conv(), all, {"CPUExecutionProvider"});
  expect_near(cpu.run({}, {{"x", Value(input())}})[0].tensor(), want);
  EXPECT_EQ(op_types(ir::load_model(all.optimized_model_filepath)),
            (std::vector<std::string>{"ReorderInput", "NchwcConv", "NchwcConv", "ReorderOutput"}));

  // The fake device claims the Relu: the convolutions around it stay on the CPU, blocked alone.
  InferenceSession device(conv_relu_conv(), all, {test_util::kFakeDevice, "CPUExecutionProvider"});
  const std::vector<std::string> ops = op_types(ir::load_model(all.optimized_model_filepath));
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "Relu"), 1);
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "NchwcConv"), 2);
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "ReorderOutput"), 2);
  expect_near(device.run({}, {{"x", Value(input())}})[0].tensor(), want);
}

}  // namespace
}  // namespace graft
