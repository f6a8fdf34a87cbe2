// Checkpoints store every float bit-exactly (learning rates as small as a subnormal), and a
// TrainingSession refuses a damaged checkpoint before anything of its state changes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <limits>

#include "exec/error.h"
#include "ir/names.h"
#include "tests/model_builder.h"
#include "train/checkpoint.h"
#include "train/training_session.h"

namespace graft {
namespace {

std::filesystem::path temp_folder() {
  auto dir = std::filesystem::temp_directory_path() /
             ("graft_checkpoint_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

// loss = mean((x w^T - target)^2), w [2, 3].
ir::Model regression() {
  test_util::ModelBuilder b("regression");
  b.initializer("w", {2, 3}, [](int64_t i) { return 0.1f * static_cast<float>(i) - 0.2f; });
  test_util::ModelBuilder::int_attribute(b.node("Gemm", {"x", "w"}, "y"), "transB", 1);
  b.node("Sub", {"y", "target"}, "err");
  b.node("Mul", {"err", "err"}, "sq");
  test_util::ModelBuilder::int_attribute(b.node("ReduceMean", {"sq"}, "loss"), "keepdims", 0);
  b.input("x", std::vector<std::string>{"N", "3"});
  b.input("target", std::vector<std::string>{"N", "2"});
  b.output("loss", std::vector<std::string>{});
  return b.build();
}

std::map<std::string, Value> batch() {
  Tensor x(DType::Float, {4, 3}), target(DType::Float, {4, 2});
  for (int64_t i = 0; i < x.size(); ++i) x.data<float>()[i] = 0.25f * static_cast<float>(i % 5);
  for (int64_t i = 0; i < target.size(); ++i) target.data<float>()[i] = 0.5f;
  return {{"x", x}, {"target", target}};
}

TEST(Checkpoint, FloatsRoundTripBitExactly) {
  const float denormal = std::numeric_limits<float>::denorm_min();
  for (float value : {1e-7f, 3.14159e-12f, denormal, 5.877e-39f, 0.1f, -2.5e38f, 0.0f}) {
    const float back = parse_float(format_float(value), "value");
    EXPECT_EQ(std::bit_cast<uint32_t>(back), std::bit_cast<uint32_t>(value)) << format_float(value);
  }
  EXPECT_THROW(parse_float("abc", "property 'graft.lr'"), InvalidArgument);
  EXPECT_THROW(parse_float("1e99", "property 'graft.lr'"), InvalidArgument);
  EXPECT_THROW(parse_float("", "property 'graft.lr'"), InvalidArgument);
}

TEST(Checkpoint, TrainingSessionLearningRatesRoundTripBitExactly) {
  const auto dir = temp_folder();
  for (float lr : {1e-7f, 3.14159e-12f, std::numeric_limits<float>::denorm_min()}) {
    TrainingOptions options;
    options.loss = "loss";
    options.learning_rate = lr;
    options.data_parallel = false;
    TrainingSession saved(regression(), options);
    saved.train_step(batch());
    saved.save_checkpoint((dir / "lr.ckpt").string());
    options.learning_rate = 1.0f;
    TrainingSession loaded(regression(), options);
    loaded.load_checkpoint((dir / "lr.ckpt").string());
    EXPECT_EQ(std::bit_cast<uint32_t>(loaded.learning_rate()), std::bit_cast<uint32_t>(lr))
        << format_float(lr) << " came back as " << format_float(loaded.learning_rate());
    EXPECT_EQ(loaded.step(), 1);
  }
  std::filesystem::remove_all(dir);
}

TEST(Checkpoint, DamagedCheckpointLeavesTheSessionAsItWas) {
  const auto dir = temp_folder();
  TrainingOptions options;
  options.loss = "loss";
  options.data_parallel = false;
  TrainingSession session(regression(), options);
  session.train_step(batch());
  const std::string good = (dir / "good.ckpt").string();
  session.save_checkpoint(good);
  const Tensor before = session.state().at("w").clone();
  const float lr_before = session.learning_rate();
  for (const auto& [property, text] :
       std::vector<std::pair<std::string, std::string>>{{names::kLearningRate, "abc"},
                                                        {names::kRngProperty, "not a state"},
                                                        {names::kWorldSizeProperty, "two"}}) {
    Checkpoint c = load_checkpoint(good);
    for (auto& [name, t] : c.tensors) {
      t = t.clone();
      for (int64_t i = 0; i < t.size(); ++i) t.data<float>()[i] = 42.0f;
    }
    c.step = 99;
    c.properties[property] = text;
    const std::string bad = (dir / "bad.ckpt").string();
    save_checkpoint(c, bad);
    try {
      session.load_checkpoint(bad);
      ADD_FAILURE() << property << " = '" << text << "' was accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("bad.ckpt"), std::string::npos) << e.what();
    }
    EXPECT_EQ(session.step(), 1) << property;
    EXPECT_EQ(session.learning_rate(), lr_before) << property;
    const Tensor& after = session.state().at("w");
    for (int64_t i = 0; i < after.size(); ++i)
      ASSERT_EQ(after.data<float>()[i], before.data<float>()[i]) << property;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace graft
