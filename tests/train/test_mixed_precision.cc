// Mixed-precision training (train/mixed_precision.h): products computed in float16 or bfloat16
// follow the float32 run within the low precision's error; an update that overflows is skipped
// whole (parameters, optimizer state and step count unchanged) and the loss scale backs off;
// finite steps grow it again.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "exec/session.h"
#include "ir/model.h"
#include "tests/model_builder.h"
#include "train/mixed_precision.h"
#include "train/training_session.h"

namespace graft {
namespace {

// loss = mean((relu(x w1^T + b1) w2^T + b2 - target)^2): two Gemms, the products autocast
// lowers.
ir::Model mlp() {
  test_util::ModelBuilder b("mlp");
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  auto value = [&](int64_t) { return normal(rng); };
  b.initializer("w1", {16, 8}, value);
  b.initializer("b1", {16}, value);
  b.initializer("w2", {4, 16}, value);
  b.initializer("b2", {4}, value);
  test_util::ModelBuilder::int_attribute(b.node("Gemm", {"x", "w1", "b1"}, "h"), "transB", 1);
  b.node("Relu", {"h"}, "a");
  test_util::ModelBuilder::int_attribute(b.node("Gemm", {"a", "w2", "b2"}, "y"), "transB", 1);
  b.node("Sub", {"y", "target"}, "err");
  b.node("Mul", {"err", "err"}, "sq");
  test_util::ModelBuilder::int_attribute(b.node("ReduceMean", {"sq"}, "loss"), "keepdims", 0);
  b.input("x", std::vector<std::string>{"N", "8"});
  b.input("target", std::vector<std::string>{"N", "4"});
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

std::map<std::string, Value> batch(unsigned seed) {
  return {{"x", random_tensor({32, 8}, seed)}, {"target", random_tensor({32, 4}, seed + 100)}};
}

TrainingOptions options(DType compute) {
  TrainingOptions o;
  o.loss = "loss";
  o.optimizer.kind = optim::Kind::SGD;
  o.optimizer.momentum = 0.9f;
  o.learning_rate = 0.05f;
  o.mixed_precision.compute = compute;
  return o;
}

double max_relative_difference(const Tensor& a, const Tensor& b) {
  double worst = 0, scale = 0;
  for (int64_t i = 0; i < a.size(); ++i)
    scale = std::max(scale, std::fabs(double(b.data<float>()[i])));
  for (int64_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(double(a.data<float>()[i]) - b.data<float>()[i]) / scale);
  return worst;
}

TEST(MixedPrecision, AutocastLowersOnlyTheProducts) {
  ir::Model m = training::autocast(mlp(), DType::Float16);
  int casts = 0;
  for (const auto& n : m.graph.nodes) {
    if (n->op_type == "Cast") ++casts;
  }
  // In: x, w1, b1 for the first Gemm; a, w2, b2 for the second. Out: h, y.
  EXPECT_EQ(casts, 8);
  // Its loss follows float32's within float16's error.
  SessionOptions so;
  InferenceSession low(std::move(m), so);
  InferenceSession full(mlp(), so);
  const double a = low.run({"loss"}, batch(1))[0].tensor().scalar_as_double();
  const double b = full.run({"loss"}, batch(1))[0].tensor().scalar_as_double();
  EXPECT_NEAR(a, b, 1e-2 * std::fabs(b));
  EXPECT_NE(a, b);  // it did compute in float16
  EXPECT_THROW(training::autocast(mlp(), DType::Int8), InvalidArgument);
}

TEST(MixedPrecision, TrainsLikeFloat32) {
  for (DType compute : {DType::Float16, DType::BFloat16}) {
    SCOPED_TRACE(dtype_name(compute));
    // A scale the first gradients do not overflow at, so every step is taken (the default
    // 65536 skips the first step here, as it would in PyTorch, and the runs would drift a step
    // apart).
    TrainingOptions o = options(compute);
    o.mixed_precision.init_scale = 256.0f;
    TrainingSession low(mlp(), o);
    TrainingSession full(mlp(), options(DType::Undefined));
    double first = 0, last = 0;
    for (unsigned s = 0; s < 30; ++s) {
      last = low.train_step(batch(s));
      full.train_step(batch(s));
      if (s == 0) first = last;
    }
    EXPECT_LT(last, 0.7 * first);
    EXPECT_EQ(low.skipped_steps(), 0);
    EXPECT_EQ(low.step(), 30);
    // Master weights stay float32 and close to float32 training's.
    for (const auto& p : low.parameters()) {
      EXPECT_EQ(low.state().at(p).dtype(), DType::Float);
      EXPECT_LT(max_relative_difference(low.state().at(p), full.state().at(p)),
                compute == DType::Float16 ? 2e-2 : 8e-2)
          << p;
    }
    EXPECT_EQ(low.loss_scale(), compute == DType::Float16 ? 256.0f : 1.0f);
  }
}

TEST(MixedPrecision, AnOverflowingStepIsSkippedAndTheScaleBacksOff) {
  TrainingOptions o = options(DType::Float16);
  // float16's largest value is 65504: a scaled loss of about 1e6 overflows in the backward
  // products, then the scale halves each step until the gradients fit.
  o.mixed_precision.init_scale = 1e9f;
  o.mixed_precision.growth_interval = 3;
  TrainingSession s(mlp(), o);
  std::map<std::string, Tensor> before;
  for (const auto& [name, t] : s.state()) before[name] = t.clone();
  s.train_step(batch(1));
  EXPECT_EQ(s.skipped_steps(), 1);
  EXPECT_EQ(s.step(), 0);
  EXPECT_EQ(s.loss_scale(), 5e8f);
  for (const auto& [name, t] : s.state()) {
    EXPECT_EQ(max_relative_difference(t, before.at(name)), 0.0) << name << " changed";
  }
  int steps = 0;
  while (s.step() == 0 && steps < 40) {
    s.train_step(batch(2));
    ++steps;
  }
  ASSERT_EQ(s.step(), 1) << "no step was finite";
  EXPECT_LT(s.loss_scale(), 1e9f / 4);
  const float settled = s.loss_scale();
  // growth_interval finite steps in a row double it.
  for (unsigned k = 0; k < 3; ++k) s.train_step(batch(10 + k));
  EXPECT_EQ(s.loss_scale(), 2 * settled);
  EXPECT_EQ(s.skipped_steps(), 1 + steps - 1);
}

TEST(MixedPrecision, SplitStepsSayTheyRunInFloat32Only) {
  TrainingSession s(mlp(), options(DType::Float16));
  EXPECT_THROW(s.forward_backward(batch(1)), NotImplemented);
}

}  // namespace
}  // namespace graft
