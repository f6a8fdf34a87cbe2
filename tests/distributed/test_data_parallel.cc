// The data-parallel pass: gradients reach the optimizer update through com.graft.AllReduce
// nodes, bucketed in the order backward computes them, each bucket's node right after its last
// gradient; backward itself keeps reading the local gradients.
#include "distributed/data_parallel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "autodiff/gradient.h"
#include "ir/error.h"
#include "ir/model.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "optim/optimizer.h"
#include "tests/model_builder.h"

namespace graft::distributed {
namespace {

// Two Gemm layers with a mean-squared-error loss: fc1.weight [16, 6], fc1.bias [16],
// fc2.weight [3, 16], fc2.bias [3].
ir::Model mlp() {
  test_util::ModelBuilder b("mlp");
  auto value = [](int64_t i) { return 0.01f * static_cast<float>(i % 7); };
  b.initializer("fc1.weight", {16, 6}, value);
  b.initializer("fc1.bias", {16}, value);
  b.initializer("fc2.weight", {3, 16}, value);
  b.initializer("fc2.bias", {3}, value);
  test_util::ModelBuilder::int_attribute(b.node("Gemm", {"x", "fc1.weight", "fc1.bias"}, "h"),
                                         "transB", 1);
  b.node("Tanh", {"h"}, "r");
  test_util::ModelBuilder::int_attribute(b.node("Gemm", {"r", "fc2.weight", "fc2.bias"}, "y"),
                                         "transB", 1);
  b.node("Sub", {"y", "target"}, "err");
  b.node("Mul", {"err", "err"}, "sq");
  test_util::ModelBuilder::int_attribute(b.node("ReduceMean", {"sq"}, "loss"), "keepdims", 0);
  b.input("x", std::vector<std::string>{"N", "6"});
  b.input("target", std::vector<std::string>{"N", "3"});
  b.output("loss", std::nullopt);
  return b.build();
}

const std::vector<std::string> kParams = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};

ir::Model training_step() {
  optim::OptimizerConfig config;
  config.max_grad_norm = 1.0f;
  return optim::add_optimizer(autodiff::build_gradient_graph(mlp(), "loss", kParams), kParams,
                              config);
}

size_t position(const ir::Graph& g, const std::string& node_name) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i]->name == node_name) return i;
  }
  ADD_FAILURE() << "no node " << node_name;
  return 0;
}

TEST(DataParallel, OneBucketBeforeTheUpdate) {
  ir::Model step = training_step();
  GradientBuckets b = add_gradient_all_reduce(step, kParams);
  ASSERT_EQ(b.buckets.size(), 1u);
  EXPECT_EQ(b.buckets[0].size(), kParams.size());
  const ir::Graph& g = step.graph;
  const ir::Node* reduce = g.producer("fc1.weight_grad");
  ASSERT_NE(reduce, nullptr);
  EXPECT_EQ(reduce->op_type, "AllReduce");
  EXPECT_EQ(reduce->domain, "com.graft");
  EXPECT_EQ(reduce->find_attr("reduction")->proto->s(), "average");
  EXPECT_EQ(reduce->inputs.size(), reduce->outputs.size());
  EXPECT_EQ(step.opset("com.graft"), 1);
  // The update and the graph outputs read the averaged gradients; only the all-reduce reads the
  // local ones.
  for (const auto& p : kParams) {
    for (const ir::Node* n : g.consumers(p + "_grad/local")) EXPECT_EQ(n, reduce) << p;
    EXPECT_EQ(g.producer(p + "_grad"), reduce) << p;
    EXPECT_TRUE(std::any_of(g.outputs.begin(), g.outputs.end(),
                            [&](const ir::ValueInfo& v) { return v.name == p + "_grad"; }));
  }
  ir::Graph copy = g.clone();
  copy.topological_sort();  // throws on a node reading a value computed after it
  for (size_t i = 0; i < g.nodes.size(); ++i) EXPECT_EQ(copy.nodes[i]->name, g.nodes[i]->name);
}

TEST(DataParallel, BucketsFollowBackwardOrder) {
  ir::Model step = training_step();
  DataParallelOptions options;
  options.bucket_bytes = 100;  // gradients of 384, 64, 192 and 12 bytes
  GradientBuckets b = add_gradient_all_reduce(step, kParams, options);
  ASSERT_GE(b.buckets.size(), 3u);
  ASSERT_EQ(b.nodes.size(), b.buckets.size());
  const ir::Graph& g = step.graph;
  std::map<std::string, size_t> computed;  // gradient -> position of the node computing it
  for (const auto& node : b.nodes) {
    const ir::Node* reduce = g.nodes[position(g, node)].get();
    for (size_t i = 0; i < reduce->inputs.size(); ++i)
      computed[reduce->outputs[i]] = position(g, g.producer(reduce->inputs[i])->name);
  }
  ASSERT_EQ(computed.size(), kParams.size());
  size_t previous = 0;
  for (size_t k = 0; k < b.buckets.size(); ++k) {
    const size_t at = position(g, b.nodes[k]);
    EXPECT_GT(at, previous);
    size_t last = 0;
    for (const auto& grad : b.buckets[k]) last = std::max(last, computed.at(grad));
    // Right after the bucket's last gradient (other all-reduce nodes aside).
    for (size_t i = last + 1; i < at; ++i) EXPECT_EQ(g.nodes[i]->op_type, "AllReduce");
    previous = at;
  }
  // fc2's gradients come first in backward, so the first bucket holds one of them and its
  // all-reduce runs before fc1's weight gradient is computed.
  EXPECT_TRUE(b.buckets[0][0].rfind("fc2.", 0) == 0) << b.buckets[0][0];
  EXPECT_LT(position(g, b.nodes[0]), computed.at("fc1.weight_grad"));
  const size_t update = position(g, "optim/AdamUpdate");
  EXPECT_LT(position(g, b.nodes.back()), update);
  // The saved model shows the collectives.
  ir::Model reloaded = ir::load_model_from_bytes(ir::serialize_model(step));
  EXPECT_EQ(std::count_if(reloaded.graph.nodes.begin(), reloaded.graph.nodes.end(),
                          [](const auto& n) { return n->op_type == "AllReduce"; }),
            static_cast<long>(b.buckets.size()));
}

TEST(DataParallel, ZeroPartitionIsBalancedAndDeterministic) {
  const ir::Model model = mlp();
  // 384, 64, 192 and 12 bytes: the largest alone on rank 0, the rest on rank 1.
  EXPECT_EQ(partition_parameters(model, kParams, 2), (std::vector<int>{0, 1, 1, 1}));
  EXPECT_EQ(partition_parameters(model, kParams, 1), (std::vector<int>{0, 0, 0, 0}));
  EXPECT_EQ(partition_parameters(model, kParams, 4), (std::vector<int>{0, 2, 1, 3}));
  EXPECT_THROW(partition_parameters(model, kParams, 0), InvalidArgument);
}

TEST(DataParallel, ZeroStepUpdatesOwnParametersAndBroadcasts) {
  const std::vector<int> owners = {0, 1, 1, 1};
  ir::Model grads = autodiff::build_gradient_graph(mlp(), "loss", kParams);
  ir::Model step = optim::add_optimizer(grads, {"fc1.weight"}, optim::OptimizerConfig{});
  add_gradient_all_reduce(step, kParams);
  add_gradient_clipping(step, kParams, 1.0f);
  add_parameter_broadcast(step, kParams, owners, 0);
  const ir::Graph& g = step.graph;
  const ir::Node* update = g.nodes[position(g, "optim/AdamUpdate")].get();
  EXPECT_NE(std::find(update->inputs.begin(), update->inputs.end(), "fc1.weight_grad/clipped"),
            update->inputs.end());
  const ir::Node* own = g.producer("fc1.weight.new");
  ASSERT_NE(own, nullptr);
  EXPECT_EQ(own->op_type, "Broadcast");
  EXPECT_EQ(own->find_attr("root")->proto->i(), 0);
  EXPECT_EQ(own->inputs, (std::vector<std::string>{"fc1.weight.new/local"}));
  const ir::Node* other = g.producer("fc2.bias.new");
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->find_attr("root")->proto->i(), 1);
  EXPECT_EQ(other->inputs, (std::vector<std::string>{"fc1.bias", "fc2.weight", "fc2.bias"}));
  EXPECT_TRUE(g.is_graph_input("fc2.bias"));
  EXPECT_LT(position(g, own->name), position(g, other->name));
  ir::Graph copy = g.clone();
  copy.topological_sort();
  EXPECT_THROW(add_gradient_clipping(step, kParams, 0.0f), InvalidArgument);
  EXPECT_THROW(add_parameter_broadcast(step, kParams, {0}, 0), InvalidArgument);
}

TEST(DataParallel, Errors) {
  ir::Model step = training_step();
  DataParallelOptions zero;
  zero.bucket_bytes = 0;
  EXPECT_THROW(add_gradient_all_reduce(step, kParams, zero), InvalidArgument);
  EXPECT_THROW(add_gradient_all_reduce(step, {"nothing"}), InvalidArgument);
}

}  // namespace
}  // namespace graft::distributed
