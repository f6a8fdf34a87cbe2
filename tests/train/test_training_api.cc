#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>
#include <tuple>

#include "autodiff/gradient.h"
#include "exec/generator.h"
#include "ir/model.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "optim/optimizer.h"
#include "train/checkpoint.h"
#include "train/training_api.h"

namespace graft::training {
namespace {

namespace fs = std::filesystem;

void set_type(onnx::ValueInfoProto* info, const std::string& name, int elem_type,
              const std::vector<int64_t>& dims) {
  info->set_name(name);
  auto* tt = info->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem_type);
  auto* shape = tt->mutable_shape();
  for (int64_t d : dims) {
    if (d < 0) {
      shape->add_dim()->set_dim_param("N");
    } else {
      shape->add_dim()->set_dim_value(d);
    }
  }
}

onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op,
                          const std::vector<std::string>& inputs, const std::string& output) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(output + "/" + op);
  for (const auto& i : inputs) n->add_input(i);
  n->add_output(output);
  return n;
}

// What generate_artifacts writes for y = x W + b with loss mean((y - target)^2), parameters W
// [3, 2] and b [2], written by the C++ builders the Python function wraps.
void write_artifacts(const fs::path& dir, const optim::OptimizerConfig& config) {
  onnx::ModelProto m;
  m.set_ir_version(9);
  m.add_opset_import()->set_version(18);
  auto* g = m.mutable_graph();
  g->set_name("linear");
  const std::vector<float> w = {0.5f, -0.2f, 0.1f, 0.3f, -0.4f, 0.2f}, b = {0.05f, -0.05f};
  for (const auto& [name, values, dims] : {std::tuple{"W", w, std::vector<int64_t>{3, 2}},
                                           std::tuple{"b", b, std::vector<int64_t>{2}}}) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float v : values) t->add_float_data(v);
    set_type(g->add_input(), name, onnx::TensorProto::FLOAT, dims);
  }
  set_type(g->add_input(), "x", onnx::TensorProto::FLOAT, {-1, 3});
  set_type(g->add_input(), "target", onnx::TensorProto::FLOAT, {-1, 2});
  add_node(g, "MatMul", {"x", "W"}, "xw");
  add_node(g, "Add", {"xw", "b"}, "y");
  add_node(g, "Sub", {"y", "target"}, "diff");
  add_node(g, "Mul", {"diff", "diff"}, "sq");
  auto* mean = add_node(g, "ReduceMean", {"sq"}, "loss");
  auto* keepdims = mean->add_attribute();
  keepdims->set_name("keepdims");
  keepdims->set_type(onnx::AttributeProto::INT);
  keepdims->set_i(0);
  set_type(g->add_output(), "y", onnx::TensorProto::FLOAT, {-1, 2});
  set_type(g->add_output(), "loss", onnx::TensorProto::FLOAT, {});
  const ir::Model eval = ir::load_model_from_bytes(m.SerializeAsString());
  const std::vector<std::string> params = {"W", "b"};
  ir::save_model(eval, (dir / "eval_model.onnx").string());
  ir::save_model(autodiff::build_gradient_graph(eval, "loss", params),
                 (dir / "training_model.onnx").string());

  onnx::ModelProto u;
  u.set_ir_version(9);
  u.add_opset_import()->set_version(18);
  auto* ug = u.mutable_graph();
  ug->set_name("optimizer_step");
  for (const auto& init : g->initializer()) {
    *ug->add_initializer() = init;
    std::vector<int64_t> dims(init.dims().begin(), init.dims().end());
    set_type(ug->add_input(), "gradient/" + init.name(), onnx::TensorProto::FLOAT, dims);
    add_node(ug, "Identity", {"gradient/" + init.name()}, init.name() + "_grad");
    set_type(ug->add_output(), init.name() + "_grad", onnx::TensorProto::FLOAT, dims);
  }
  ir::save_model(
      optim::add_optimizer(ir::load_model_from_bytes(u.SerializeAsString()), params, config),
      (dir / "optimizer_model.onnx").string());

  Checkpoint c;
  c.tensors["W"] = Tensor(DType::Float, {3, 2});
  c.tensors["b"] = Tensor(DType::Float, {2});
  std::copy(w.begin(), w.end(), c.tensors["W"].data<float>());
  std::copy(b.begin(), b.end(), c.tensors["b"].data<float>());
  save_checkpoint(c, (dir / "checkpoint").string());
}

// target = x A + c for fixed A, c: a linear model can fit it exactly.
std::map<std::string, Value> batch(int seed) {
  Tensor x(DType::Float, {4, 3}), target(DType::Float, {4, 2});
  for (int i = 0; i < 12; ++i) x.data<float>()[i] = std::sin(0.7f * static_cast<float>(i + seed));
  for (int r = 0; r < 4; ++r) {
    const float* xr = x.data<float>() + 3 * r;
    target.data<float>()[2 * r] = xr[0] - 2 * xr[1] + 0.5f * xr[2] + 0.3f;
    target.data<float>()[2 * r + 1] = 0.25f * xr[0] + xr[2] - 0.1f;
  }
  return {{"x", x}, {"target", target}};
}

double loss_of(const std::vector<Value>& outs) { return outs.back().tensor().scalar_as_double(0); }

void expect_error(const std::function<void()>& f, const std::vector<std::string>& mentions) {
  try {
    f();
    ADD_FAILURE() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    const std::string what = e.what();
    for (const auto& m : mentions) EXPECT_NE(what.find(m), std::string::npos) << what;
  }
}

class TrainingApi : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("graft_training_api_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    optim::OptimizerConfig sgd;
    sgd.kind = optim::Kind::SGD;
    sgd.momentum = 0.9f;
    write_artifacts(dir_, sgd);
    paths_ = ArtifactPaths::in_directory(dir_.string());
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  ArtifactPaths paths_;
};

TEST_F(TrainingApi, MissingArtifactFilesAreNamed) {
  expect_error([&] { CheckpointState::load((dir_ / "nope").string()); }, {"nope"});
  CheckpointState state = CheckpointState::load(paths_.checkpoint);
  expect_error(
      [&] {
        Module{state, (dir_ / "missing.onnx").string()};
      },
      {"training model", "missing.onnx"});
  expect_error(
      [&] {
        Module{state, paths_.training_model, (dir_ / "no_eval.onnx").string()};
      },
      {"eval model", "no_eval.onnx"});
  Module module(state, paths_.training_model);
  expect_error(
      [&] {
        Optimizer{module, (dir_ / "no_optim.onnx").string()};
      },
      {"optimizer model", "no_optim.onnx"});
  expect_error([&] { module.eval_step(batch(0)); }, {"eval model"});
  expect_error([&] { module.export_model_for_inferencing((dir_ / "x.onnx").string(), {"y"}); },
               {"eval model"});
}

TEST_F(TrainingApi, CheckpointLackingAParameterIsRefused) {
  Checkpoint c = load_checkpoint(paths_.checkpoint);
  c.tensors.erase("b");
  save_checkpoint(c, (dir_ / "partial").string());
  CheckpointState partial = CheckpointState::load((dir_ / "partial").string());
  expect_error([&] { Module{partial, paths_.training_model}; }, {"partial", "'b'"});

  c = load_checkpoint(paths_.checkpoint);
  c.tensors["b"] = Tensor(DType::Float, {3});
  save_checkpoint(c, (dir_ / "wrong_shape").string());
  CheckpointState wrong = CheckpointState::load((dir_ / "wrong_shape").string());
  expect_error(
      [&] {
        Module{wrong, paths_.training_model};
      },
      {"wrong_shape", "'b'", "shape [3]", "the model requires 2"});
}

TEST_F(TrainingApi, WrongFeedsNameTheInputAndLeaveGradientsAlone) {
  CheckpointState state = CheckpointState::load(paths_.checkpoint);
  Module module(state, paths_.training_model, paths_.eval_model);
  EXPECT_EQ(module.input_names(true), (std::vector<std::string>{"x", "target"}));
  EXPECT_EQ(module.parameter_names(), (std::vector<std::string>{"W", "b"}));
  module.train_step(batch(0));
  const Tensor before = module.gradients().at("W");

  auto feeds = batch(1);
  feeds["nope"] = Tensor(DType::Float, {1});
  expect_error([&] { module.train_step(feeds); }, {"'nope'", "x, target"});
  feeds = batch(1);
  feeds.erase("target");
  expect_error([&] { module.train_step(feeds); }, {"'target'"});
  feeds = batch(1);
  feeds["x"] = Tensor(DType::Double, {4, 3});
  expect_error([&] { module.train_step(feeds); }, {"'x'", "element type"});
  feeds = batch(1);
  feeds["x"] = Tensor(DType::Float, {4, 5});
  expect_error([&] { module.train_step(feeds); }, {"'x'", "dimension 1"});
  feeds = batch(1);
  feeds["W"] = Tensor(DType::Float, {3, 2});
  expect_error([&] { module.train_step(feeds); }, {"'W'", "parameter"});
  expect_error([&] { module.eval_step(feeds); }, {"'W'", "parameter"});

  const Tensor after = module.gradients().at("W");
  EXPECT_TRUE(std::equal(before.span<float>().begin(), before.span<float>().end(),
                         after.span<float>().begin()));
  expect_error(
      [&] {
        state.update_parameter("W", Tensor(DType::Float, {2, 3}));
      },
      {"'W'", "[3, 2]", "[2, 3]"});
  expect_error([&] { state.parameter("nope"); }, {"'nope'"});
}

TEST_F(TrainingApi, LearningRateGetSetAndResume) {
  CheckpointState state = CheckpointState::load(paths_.checkpoint);
  Module module(state, paths_.training_model);
  Optimizer optimizer(module, paths_.optimizer_model);
  EXPECT_FLOAT_EQ(optimizer.learning_rate(), 1e-3f);
  optimizer.set_learning_rate(0.0375f);
  EXPECT_EQ(optimizer.learning_rate(), 0.0375f);
  expect_error([&] { optimizer.set_learning_rate(-1.0f); }, {"learning rate"});
  expect_error([&] { optimizer.set_learning_rate(NAN); }, {"learning rate"});
  EXPECT_EQ(optimizer.learning_rate(), 0.0375f);
  expect_error([&] { optimizer.step(); }, {"no gradients"});
  EXPECT_EQ(state.step(), 0);

  module.train_step(batch(0));
  optimizer.step();
  EXPECT_EQ(state.step(), 1);
  EXPECT_EQ(state.optimizer_state().size(), 2u);  // a momentum buffer per parameter
  const std::string with = (dir_ / "with_state").string(), without = (dir_ / "without").string();
  state.save(with, /*include_optimizer_state=*/true);
  state.save(without);

  CheckpointState resumed = CheckpointState::load(with);
  EXPECT_EQ(resumed.step(), 1);
  EXPECT_EQ(resumed.optimizer_state().size(), 2u);
  Module module2(resumed, paths_.training_model);
  Optimizer optimizer2(module2, paths_.optimizer_model);
  EXPECT_EQ(optimizer2.learning_rate(), 0.0375f);

  CheckpointState fresh = CheckpointState::load(without);
  EXPECT_EQ(fresh.step(), 0);
  EXPECT_TRUE(fresh.optimizer_state().empty());
  EXPECT_FALSE(fresh.has_property("graft.lr"));
  EXPECT_EQ(fresh.parameters().size(), 2u);
}

TEST_F(TrainingApi, StepsReduceTheLossAndResumeExactly) {
  CheckpointState state = CheckpointState::load(paths_.checkpoint);
  Module module(state, paths_.training_model, paths_.eval_model);
  Optimizer optimizer(module, paths_.optimizer_model, 0.05f);
  const double initial = loss_of(module.eval_step(batch(0)));
  for (int i = 0; i < 30; ++i) {
    module.train_step(batch(i % 3));
    optimizer.step();
    module.lazy_reset_grad();
  }
  const double trained = loss_of(module.eval_step(batch(0)));
  EXPECT_LT(trained, 0.2 * initial) << initial << " -> " << trained;
  EXPECT_EQ(state.step(), 30);

  // Saving with the optimizer state and continuing gives the same parameters as not stopping.
  state.save((dir_ / "mid").string(), true);
  CheckpointState resumed = CheckpointState::load((dir_ / "mid").string());
  Module module2(resumed, paths_.training_model);
  Optimizer optimizer2(module2, paths_.optimizer_model);
  for (auto [m, o] : {std::pair{&module, &optimizer}, std::pair{&module2, &optimizer2}}) {
    for (int i = 0; i < 5; ++i) {
      m->train_step(batch(i));
      o->step();
      m->lazy_reset_grad();
    }
  }
  for (const auto& name : {"W", "b"}) {
    const Tensor a = state.parameter(name), b = resumed.parameter(name);
    EXPECT_TRUE(std::equal(a.span<float>().begin(), a.span<float>().end(), b.span<float>().begin()))
        << name;
  }
}

TEST_F(TrainingApi, GradientsAccumulateUntilLazyReset) {
  CheckpointState state = CheckpointState::load(paths_.checkpoint);
  Module module(state, paths_.training_model);
  module.train_step(batch(0));
  const Tensor first = module.gradients().at("W").clone();
  module.train_step(batch(1));
  const Tensor sum = module.gradients().at("W").clone();
  module.lazy_reset_grad();
  module.train_step(batch(1));
  const Tensor second = module.gradients().at("W");
  for (int64_t i = 0; i < first.size(); ++i) {
    EXPECT_FLOAT_EQ(sum.data<float>()[i], first.data<float>()[i] + second.data<float>()[i]);
  }
}

TEST_F(TrainingApi, ExportedModelHasTrainedWeightsAndNoLoss) {
  CheckpointState state = CheckpointState::load(paths_.checkpoint);
  Module module(state, paths_.training_model, paths_.eval_model);
  Optimizer optimizer(module, paths_.optimizer_model, 0.05f);
  for (int i = 0; i < 3; ++i) {
    module.train_step(batch(i));
    optimizer.step();
    module.lazy_reset_grad();
  }
  const std::string path = (dir_ / "inference.onnx").string();
  expect_error([&] { module.export_model_for_inferencing(path, {"nope"}); }, {"'nope'"});
  expect_error([&] { module.export_model_for_inferencing(path, {}); }, {"no output"});
  module.export_model_for_inferencing(path, {"y"});
  InferenceSession inference = InferenceSession::from_file(path);
  ASSERT_EQ(inference.inputs().size(), 1u);
  EXPECT_EQ(inference.inputs()[0].name, "x");
  ASSERT_EQ(inference.outputs().size(), 1u);
  const auto feeds = batch(2);
  const Tensor y = inference.run({}, {{"x", feeds.at("x")}})[0].tensor();
  const Tensor want = module.eval_step(feeds)[0].tensor();
  ASSERT_EQ(y.shape(), want.shape());
  for (int64_t i = 0; i < y.size(); ++i) EXPECT_FLOAT_EQ(y.data<float>()[i], want.data<float>()[i]);
}

TEST_F(TrainingApi, RefusedCheckpointLeavesTheGeneratorAsItWas) {
  CheckpointState state = CheckpointState::load(paths_.checkpoint);
  Module module(state, paths_.training_model);
  Optimizer optimizer(module, paths_.optimizer_model, 0.05f);
  module.train_step(batch(0));
  optimizer.step();
  const std::string good = (dir_ / "good").string(), bad = (dir_ / "bad").string();
  state.save(good, /*include_optimizer_state=*/true);
  default_generator().seed(5);
  const std::string generator = default_generator().state();
  using Edit = std::function<void(Checkpoint&)>;
  const std::vector<std::pair<Edit, std::vector<std::string>>> cases = {
      {[](Checkpoint& c) { c.properties["graft.lr"] = "abc"; }, {"'graft.lr'", "'abc'"}},
      {[](Checkpoint& c) { c.properties["graft.lr"] = "-1"; }, {"'graft.lr'", "negative"}},
      {[](Checkpoint& c) { c.properties["graft.rng"] = "garbage"; }, {"'graft.rng'"}},
      {[](Checkpoint& c) { c.step = -3; }, {"step counter is -3"}},
      {[](Checkpoint& c) { c.tensors.erase("W.sgd.momentum"); },
       {"'graft.optimizer_state'", "'W.sgd.momentum'"}},
  };
  for (const auto& [edit, mentions] : cases) {
    Checkpoint c = load_checkpoint(good);
    edit(c);
    save_checkpoint(c, bad);
    std::vector<std::string> all = mentions;
    all.push_back(bad);
    expect_error([&] { CheckpointState::load(bad); }, all);
    EXPECT_EQ(default_generator().state(), generator);
  }
  // The state a refused Optimizer was built over is as it was: a TrainingSession's checkpoint
  // keeps the momentum among the parameters, and a mistyped one stays there.
  Checkpoint c = load_checkpoint(good);
  c.properties.erase("graft.optimizer_state");
  c.tensors["W.sgd.momentum"] = Tensor(DType::Float, {2, 3});
  save_checkpoint(c, bad);
  CheckpointState loaded = CheckpointState::load(bad);
  Module resumed(loaded, paths_.training_model);
  expect_error([&] { Optimizer(resumed, paths_.optimizer_model); },
               {"optimizer state 'W.sgd.momentum'", "dimension"});
  EXPECT_EQ(loaded.parameters().size(), 4u);
  EXPECT_TRUE(loaded.optimizer_state().empty());
  CheckpointState in_memory(state.parameters(), 0, {{"graft.lr", "abc"}});
  Module fresh(in_memory, paths_.training_model);
  expect_error([&] { Optimizer(fresh, paths_.optimizer_model); }, {"'graft.lr'", "'abc'"});
  EXPECT_EQ(in_memory.property("graft.lr"), "abc");
}

// Two threads train one Module and step one Optimizer: every call counts, one after another.
// With one batch, every train_step adds the same gradient and every step applies the same
// function of the state, so any order ends where one thread making all the calls ends.
TEST_F(TrainingApi, TwoThreadsShareAModuleAndItsOptimizer) {
  CheckpointState serial_state = CheckpointState::load(paths_.checkpoint);
  Module serial_module(serial_state, paths_.training_model);
  Optimizer serial(serial_module, paths_.optimizer_model, 0.01f);
  const auto feeds = batch(0);
  for (int i = 0; i < 400; ++i) serial_module.train_step(feeds);
  const auto serial_gradients = serial_module.gradients();
  for (int i = 0; i < 400; ++i) serial.step();

  CheckpointState state = CheckpointState::load(paths_.checkpoint);
  Module module(state, paths_.training_model);
  Optimizer optimizer(module, paths_.optimizer_model, 0.01f);
  auto in_two_threads = [](const std::function<void()>& call) {
    std::vector<std::string> errors(2);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        try {
          for (int i = 0; i < 200; ++i) call();
        } catch (const std::exception& e) {
          errors[t] = e.what();
        }
      });
    }
    for (auto& thread : threads) thread.join();
    for (const auto& e : errors) EXPECT_EQ(e, "");
  };
  auto same = [](const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, t] : a) {
      ASSERT_EQ(t.nbytes(), b.at(name).nbytes()) << name;
      EXPECT_EQ(std::memcmp(t.raw(), b.at(name).raw(), t.nbytes()), 0) << name;
    }
  };
  in_two_threads([&] { module.train_step(feeds); });
  same(module.gradients(), serial_gradients);
  in_two_threads([&] { optimizer.step(); });
  EXPECT_EQ(state.step(), 400);
  same(state.parameters(), serial_state.parameters());
  same(state.optimizer_state(), serial_state.optimizer_state());
}

}  // namespace
}  // namespace graft::training
