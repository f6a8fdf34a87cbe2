// TrainingSession from several threads: the calls are serialized, so two threads' steps all
// count and end where one thread running them all ends.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/model_builder.h"
#include "train/training_session.h"

namespace graft {
namespace {

// loss = mean((tanh(x w1^T) w2^T - target)^2), w1 [16, 6], w2 [3, 16].
ir::Model network() {
  test_util::ModelBuilder b("network");
  b.initializer("w1", {16, 6}, [](int64_t i) { return 0.05f * static_cast<float>(i % 11) - 0.2f; });
  b.initializer("w2", {3, 16}, [](int64_t i) { return 0.03f * static_cast<float>(i % 7) - 0.1f; });
  test_util::ModelBuilder::int_attribute(b.node("Gemm", {"x", "w1"}, "h"), "transB", 1);
  b.node("Tanh", {"h"}, "a");
  test_util::ModelBuilder::int_attribute(b.node("Gemm", {"a", "w2"}, "y"), "transB", 1);
  b.node("Sub", {"y", "target"}, "err");
  b.node("Mul", {"err", "err"}, "sq");
  test_util::ModelBuilder::int_attribute(b.node("ReduceMean", {"sq"}, "loss"), "keepdims", 0);
  b.input("x", std::vector<std::string>{"N", "6"});
  b.input("target", std::vector<std::string>{"N", "3"});
  b.output("loss", std::vector<std::string>{});
  return b.build();
}

// One batch for every step: each step is then the same function of the state, so any order of
// two threads' steps ends where one thread's run of them all ends, bit for bit.
std::map<std::string, Value> batch() {
  Tensor x(DType::Float, {8, 6}), target(DType::Float, {8, 3});
  for (int64_t i = 0; i < x.size(); ++i) x.data<float>()[i] = 0.1f * static_cast<float>(i % 9);
  for (int64_t i = 0; i < target.size(); ++i)
    target.data<float>()[i] = 0.2f * static_cast<float>(i % 4);
  return {{"x", x}, {"target", target}};
}

TrainingOptions options() {
  TrainingOptions o;
  o.loss = "loss";
  o.data_parallel = false;
  o.optimizer.kind = optim::Kind::AdamW;
  o.learning_rate = 0.01f;
  o.session.intra_op_num_threads = 1;
  return o;
}

TEST(TrainingSessionThreads, TwoThreadsStepOneSessionAsOneThreadWould) {
  const ir::Model model = network();
  const auto feeds = batch();
  TrainingSession serial(model, options());
  for (int i = 0; i < 400; ++i) serial.train_step(feeds);

  TrainingSession shared(model, options());
  std::vector<std::string> errors(3);
  auto guarded = [&](size_t index, auto&& body) {
    return std::thread([&errors, index, body] {
      try {
        body();
      } catch (const std::exception& e) {
        errors[index] = e.what();
      }
    });
  };
  auto train = [&] {
    for (int i = 0; i < 200; ++i) shared.train_step(feeds);
  };
  // Evaluation and reads of the state in between change nothing.
  auto watch = [&] {
    for (int i = 0; i < 100; ++i) {
      shared.eval_step(feeds);
      EXPECT_EQ(shared.state().size(), 6u);
    }
  };
  std::vector<std::thread> threads;
  threads.push_back(guarded(0, train));
  threads.push_back(guarded(1, train));
  threads.push_back(guarded(2, watch));
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(shared.step(), 400);
  const auto want = serial.host_state(), got = shared.host_state();
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [name, t] : want) {
    const Tensor& other = got.at(name);
    ASSERT_EQ(t.nbytes(), other.nbytes()) << name;
    EXPECT_EQ(std::memcmp(t.raw(), other.raw(), t.nbytes()), 0) << name;
  }
}

}  // namespace
}  // namespace graft
