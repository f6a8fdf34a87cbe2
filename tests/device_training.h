// A small data-parallel training run for the tests of device providers: the same model, data and
// optimizer trained with a given provider list, so a run that crosses host and device can be
// compared with one on the host alone.
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "tests/model_builder.h"
#include "train/training_session.h"

namespace graft::test_util {

// loss = mean((Relu(x w^T + bias) - target)^2), x [8, 5], w [3, 5].
inline ir::Model relu_regression() {
  ModelBuilder b("regression");
  b.initializer("w", {3, 5}, [](int64_t i) { return 0.1f * static_cast<float>(i % 7) - 0.3f; });
  b.initializer("bias", {3}, [](int64_t i) { return 0.05f * static_cast<float>(i); });
  ModelBuilder::int_attribute(b.node("Gemm", {"x", "w", "bias"}, "y"), "transB", 1);
  b.node("Relu", {"y"}, "r");
  b.node("Sub", {"r", "target"}, "err");
  b.node("Mul", {"err", "err"}, "sq");
  ModelBuilder::int_attribute(b.node("ReduceMean", {"sq"}, "loss"), "keepdims", 0);
  b.input("x", std::vector<std::string>{"8", "5"});
  b.input("target", std::vector<std::string>{"8", "3"});
  b.output("loss", std::vector<std::string>{});
  return b.build();
}

struct TrainedState {
  std::map<std::string, std::vector<float>> values;  // every float tensor of the state
  std::map<std::string, bool> on_host;               // where each state tensor lives
  std::string trace;                                 // the profile, when one was asked for
};

// Trains relu_regression() data-parallel (one rank: the AllReduce nodes copy) for 5 SGD-momentum
// steps on `providers` (empty: the defaults). A non-empty `profile_prefix` profiles the steps.
inline TrainedState train_relu_regression(std::vector<std::string> providers,
                                          const std::string& profile_prefix = "") {
  TrainingOptions options;
  options.loss = "loss";
  options.optimizer.kind = optim::Kind::SGD;
  options.optimizer.momentum = 0.9f;
  options.learning_rate = 0.05f;
  options.data_parallel = true;
  options.providers = std::move(providers);
  options.session.enable_profiling = !profile_prefix.empty();
  options.session.profile_file_prefix = profile_prefix;
  TrainingSession session(relu_regression(), options);
  for (int step = 0; step < 5; ++step) {
    Tensor x(DType::Float, {8, 5}), target(DType::Float, {8, 3});
    for (int64_t i = 0; i < 40; ++i)
      x.data<float>()[i] = std::sin(0.37f * static_cast<float>(i + 11 * step));
    for (int64_t i = 0; i < 24; ++i)
      target.data<float>()[i] = std::cos(0.21f * static_cast<float>(i + 5 * step));
    session.train_step({{"x", x}, {"target", target}});
  }
  TrainedState out;
  if (!profile_prefix.empty()) out.trace = session.end_profiling();
  for (const auto& [name, t] : session.state()) {
    out.on_host[name] = t.buffer()->on_host();
    if (t.dtype() == DType::Float)
      out.values[name].assign(t.data<float>(), t.data<float>() + t.size());
  }
  return out;
}

}  // namespace graft::test_util
