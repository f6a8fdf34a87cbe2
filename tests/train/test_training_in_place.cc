// TrainingSession hands its state to each step and the fused optimizer updates it in place: the
// buffers stay put, the values equal the update's function body (the unfused standard-op form),
// a copy someone still holds is never overwritten, and a failed step leaves the state as it was.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "autodiff/gradient.h"
#include "exec/session.h"
#include "ir/model.h"
#include "ir/serialize.h"
#include "ir/transforms/inline_functions.h"
#include "onnx/onnx_pb.h"
#include "optim/optimizer.h"
#include "tests/model_builder.h"
#include "train/training_session.h"

namespace graft {
namespace {

// loss = mean((x w^T + b - target)^2) with w [3, 5] and b [3]; x is [N, K] so a wrong K passes
// the feed checks and fails inside the run.
ir::Model regression() {
  test_util::ModelBuilder b("regression");
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  auto value = [&](int64_t) { return normal(rng); };
  b.initializer("w", {3, 5}, value);
  b.initializer("b", {3}, value);
  test_util::ModelBuilder::int_attribute(b.node("Gemm", {"x", "w", "b"}, "y"), "transB", 1);
  b.node("Sub", {"y", "target"}, "err");
  b.node("Mul", {"err", "err"}, "sq");
  test_util::ModelBuilder::int_attribute(b.node("ReduceMean", {"sq"}, "loss"), "keepdims", 0);
  b.input("x", std::vector<std::string>{"N", "K"});
  b.input("target", std::vector<std::string>{"N", "3"});
  b.output("loss", std::vector<std::string>{});
  return b.build();
}

Tensor random_tensor(Shape shape, unsigned seed) {
  Tensor t(DType::Float, std::move(shape));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (float& v : t.span<float>()) v = normal(rng);
  return t;
}

std::map<std::string, Value> batch(unsigned seed, int64_t k = 5) {
  return {{"x", random_tensor({8, k}, seed)}, {"target", random_tensor({8, 3}, seed + 100)}};
}

std::map<std::string, const void*> addresses(const TrainingSession& s) {
  std::map<std::string, const void*> out;
  for (const auto& [name, t] : s.state()) out[name] = t.raw();
  return out;
}

double max_relative_difference(const Tensor& a, const Tensor& b) {
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(double(a.data<float>()[i]) - double(b.data<float>()[i])));
    scale = std::max(scale, std::abs(double(b.data<float>()[i])));
  }
  return diff / std::max(scale, 1e-30);
}

struct Case {
  const char* name;
  optim::OptimizerConfig config;
};

std::vector<Case> cases() {
  auto make = [](optim::Kind kind, auto edit) {
    optim::OptimizerConfig c;
    c.kind = kind;
    edit(c);
    return c;
  };
  auto none = [](optim::OptimizerConfig&) {};
  return {
      {"sgd", make(optim::Kind::SGD, none)},
      {"sgd_nesterov_wd", make(optim::Kind::SGD,
                               [](auto& c) {
                                 c.momentum = 0.9f;
                                 c.nesterov = true;
                                 c.weight_decay = 0.01f;
                               })},
      {"sgd_dampening", make(optim::Kind::SGD,
                             [](auto& c) {
                               c.momentum = 0.8f;
                               c.dampening = 0.3f;
                             })},
      {"adam_l2", make(optim::Kind::Adam, [](auto& c) { c.weight_decay = 0.1f; })},
      {"adamw_clipped", make(optim::Kind::AdamW,
                             [](auto& c) {
                               c.weight_decay = 0.01f;
                               c.max_grad_norm = 0.5f;
                             })},
      {"adagrad", make(optim::Kind::Adagrad,
                       [](auto& c) {
                         c.lr_decay = 0.05f;
                         c.epsilon = 1e-10f;
                       })},
      {"rmsprop_centered_momentum", make(optim::Kind::RMSprop,
                                         [](auto& c) {
                                           c.centered = true;
                                           c.momentum = 0.9f;
                                         })},
      {"lamb", make(optim::Kind::LAMB,
                    [](auto& c) {
                      c.weight_decay = 0.01f;
                      c.epsilon = 1e-6f;
                    })},
  };
}

TEST(TrainingInPlace, StateBuffersStayPutAndMatchTheFunctionBody) {
  const ir::Model forward = regression();
  const std::vector<std::string> params = {"w", "b"};
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    TrainingOptions options;
    options.loss = "loss";
    options.params = params;
    options.optimizer = c.config;
    options.learning_rate = 0.01f;
    TrainingSession session(forward, options);
    // The unfused step: the update node replaced by its function body.
    ir::Model unfused = optim::add_optimizer(
        autodiff::build_gradient_graph(forward, "loss", params), params, c.config);
    ir::inline_functions(unfused, [](const ir::Node& n, int) { return n.domain != "com.graft"; });
    for (const auto& n : unfused.graph.nodes) ASSERT_NE(n->domain, "com.graft");
    InferenceSession reference(std::move(unfused));

    const auto before = addresses(session);
    std::map<std::string, Tensor> expected;
    for (const auto& [name, t] : session.state()) expected[name] = t.clone();
    for (unsigned step = 0; step < 5; ++step) {
      std::map<std::string, Value> feeds = batch(step);
      std::map<std::string, Value> ref_feeds = feeds;
      for (const auto& [name, t] : expected) ref_feeds[name] = t;
      Tensor lr(DType::Float, {}), counter(DType::Int64, {});
      lr.data<float>()[0] = 0.01f;
      counter.data<int64_t>()[0] = step;
      ref_feeds["graft.lr"] = lr;
      ref_feeds["graft.step"] = counter;
      std::vector<std::string> names;
      for (const auto& [name, t] : expected) names.push_back(name + ".new");
      std::vector<Value> ref = reference.run(names, ref_feeds);
      for (size_t i = 0; i < names.size(); ++i)
        expected[names[i].substr(0, names[i].size() - 4)] = ref[i].tensor();

      session.train_step(feeds);
      EXPECT_EQ(addresses(session), before) << "step " << step;
      for (const auto& [name, t] : session.state())
        EXPECT_LT(max_relative_difference(t, expected.at(name)), 1e-5) << name << " step " << step;
    }
    EXPECT_EQ(session.step(), 5);
  }
}

TEST(TrainingInPlace, HeldCopyKeepsItsValues) {
  TrainingOptions options;
  options.loss = "loss";
  options.optimizer.kind = optim::Kind::Adam;
  TrainingSession session(regression(), options);
  session.train_step(batch(1));
  Tensor held = session.state().at("w");  // shares the buffer
  const Tensor snapshot = held.clone();
  session.train_step(batch(2));
  EXPECT_NE(session.state().at("w").raw(), held.raw());
  EXPECT_EQ(std::memcmp(held.raw(), snapshot.raw(), held.nbytes()), 0);
  // Once the copy is gone the next step is in place again.
  held = Tensor();
  const void* now = session.state().at("w").raw();
  session.train_step(batch(3));
  EXPECT_EQ(session.state().at("w").raw(), now);
}

TEST(TrainingInPlace, FailedStepLeavesTheStateAsItWas) {
  TrainingOptions options;
  options.loss = "loss";
  options.optimizer.kind = optim::Kind::SGD;
  options.optimizer.momentum = 0.9f;
  TrainingSession session(regression(), options);
  session.train_step(batch(1));
  const auto before = addresses(session);
  std::map<std::string, Tensor> values;
  for (const auto& [name, t] : session.state()) values[name] = t.clone();
  // K = 4 fits the declared [N, K] but not w's 5 columns: Gemm fails inside the run.
  EXPECT_THROW(session.train_step(batch(2, 4)), std::exception);
  EXPECT_EQ(addresses(session), before);
  for (const auto& [name, t] : session.state())
    EXPECT_EQ(std::memcmp(t.raw(), values.at(name).raw(), t.nbytes()), 0) << name;
  EXPECT_EQ(session.step(), 1);
  session.train_step(batch(2));
  EXPECT_EQ(addresses(session), before);
}

}  // namespace
}  // namespace graft
