#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "exec/parallel_executor.h"
#include "exec/session.h"
#include "exec/threading.h"
#include "tests/model_builder.h"

namespace graft {
namespace {

// Sets an environment variable for one test and puts the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value ? setenv(name, value, 1) : unsetenv(name);
  }
  ~ScopedEnv() { old_.empty() ? unsetenv(name_) : setenv(name_, old_.c_str(), 1); }

 private:
  const char* name_;
  std::string old_;
};

TEST(Threading, OpenMPThreadsScopesTheTeamSize) {
  const int before = omp_get_max_threads();
  {
    const OpenMPThreads one(1);
    EXPECT_EQ(omp_get_max_threads(), 1);
    {
      const OpenMPThreads three(3);
      EXPECT_EQ(omp_get_max_threads(), 3);
      int seen = 0;
#pragma omp parallel
      {
#pragma omp single
        seen = omp_get_num_threads();
      }
      EXPECT_EQ(seen, 3);
    }
    EXPECT_EQ(omp_get_max_threads(), 1);
  }
  EXPECT_EQ(omp_get_max_threads(), before);
  EXPECT_EQ(OpenMPThreads(0).threads(), openmp_threads(0));
  EXPECT_EQ(openmp_threads(5), 5);
}

TEST(Threading, WaitSettingReadsTheEnvironmentAsLibgompDoes) {
  ScopedEnv spin("GOMP_SPINCOUNT", nullptr);
  ScopedEnv policy("OMP_WAIT_POLICY", nullptr);
  EXPECT_EQ(openmp_wait_setting(), "");
  {
    ScopedEnv passive("OMP_WAIT_POLICY", "passive");
    EXPECT_EQ(openmp_wait_setting(), "OMP_WAIT_POLICY=passive");
    ScopedEnv count("GOMP_SPINCOUNT", "10k");
    EXPECT_EQ(openmp_wait_setting(), "GOMP_SPINCOUNT=10k");
  }
  EXPECT_EQ(openmp_wait_setting(), "");
}

TEST(ParallelExecutor, RunsEveryStepOnceAfterThoseItWaitsFor) {
  // 0 -> {1, 2}, {1, 2} -> 3, 4 independent, 5 after 3 and 4.
  const std::vector<std::vector<int>> after = {{}, {0}, {0}, {1, 2}, {}, {3, 4}};
  ParallelExecutor executor(after, 3, 1);
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> clock{0};
    std::vector<std::atomic<int>> started(after.size()), finished(after.size());
    for (auto& f : finished) f = -1;
    executor.run([&](size_t i) {
      started[i] = clock++;
      EXPECT_EQ(omp_get_max_threads(), 1);
      finished[i] = clock++;
    });
    for (size_t i = 0; i < after.size(); ++i) {
      ASSERT_GE(finished[i].load(), 0) << "step " << i << " did not run";
      for (int j : after[i]) EXPECT_LT(finished[static_cast<size_t>(j)], started[i]);
    }
  }
}

TEST(ParallelExecutor, RunsIndependentStepsAtOnce) {
  // Each of the two steps waits until the other has started: only concurrent runs finish both.
  ParallelExecutor executor({{}, {}}, 2, 1);
  std::mutex mutex;
  std::condition_variable cv;
  int arrived = 0;
  bool met = true;
  executor.run([&](size_t) {
    std::unique_lock<std::mutex> lock(mutex);
    ++arrived;
    cv.notify_all();
    if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return arrived == 2; })) met = false;
  });
  EXPECT_TRUE(met);
}

TEST(ParallelExecutor, StopsAtTheFirstErrorAndRethrowsIt) {
  ParallelExecutor executor({{}, {0}, {1}}, 2, 1);
  std::atomic<int> ran{0};
  EXPECT_THROW(executor.run([&](size_t i) {
    ++ran;
    if (i == 1) throw std::runtime_error("step 1");
  }),
               std::runtime_error);
  EXPECT_EQ(ran.load(), 2);
  ran = 0;
  executor.run([&](size_t) { ++ran; });  // usable again
  EXPECT_EQ(ran.load(), 3);
}

// Two independent branches of MatMul -> Tanh -> MatMul over one input, joined by an Add; the
// branch ends are outputs too.
ir::Model two_branch_model() {
  test_util::ModelBuilder b("two_branches");
  b.input("x", std::vector<std::string>{"N", "64"});
  for (const char* side : {"a", "b"}) {
    const std::string s = side;
    const float scale = s == "a" ? 0.02f : -0.03f;
    b.initializer("w1" + s, {64, 64},
                  [&](int64_t i) { return scale * static_cast<float>(i % 17 - 8); });
    b.initializer("w2" + s, {64, 64},
                  [&](int64_t i) { return scale * static_cast<float>(i % 13 - 6); });
    b.node("MatMul", {"x", "w1" + s}, "h" + s);
    b.node("Tanh", {"h" + s}, "t" + s);
    b.node("MatMul", {"t" + s, "w2" + s}, "y" + s);
  }
  b.node("Add", {"ya", "yb"}, "sum");
  for (const char* y : {"ya", "yb", "sum"}) b.output(y, std::vector<std::string>{"N", "64"});
  return b.build();
}

TEST(ParallelExecutor, SessionResultsEqualTheSequentialOnes) {
  Tensor x(DType::Float, {8, 64});
  for (int64_t i = 0; i < x.size(); ++i)
    x.data<float>()[i] = static_cast<float>(i % 29) / 29.0f - 0.5f;
  // Each thread of the parallel runs gets one OpenMP thread, as the reference run does, so the
  // kernels split their work alike.
  SessionOptions sequential;
  sequential.intra_op_num_threads = 1;
  InferenceSession reference(two_branch_model(), sequential);
  const auto expected = reference.run({}, {{"x", x}});
  for (int inter : {1, 2, 3}) {
    SessionOptions parallel;
    parallel.execution_mode = ExecutionMode::Parallel;
    parallel.inter_op_num_threads = inter;
    parallel.intra_op_num_threads = inter;
    InferenceSession session(two_branch_model(), parallel);
    for (int run = 0; run < 5; ++run) {
      const auto got = session.run({}, {{"x", x}});
      ASSERT_EQ(got.size(), expected.size());
      for (size_t k = 0; k < got.size(); ++k) {
        const Tensor& g = got[k].tensor();
        const Tensor& e = expected[k].tensor();
        ASSERT_EQ(g.shape(), e.shape());
        for (int64_t i = 0; i < g.size(); ++i)
          ASSERT_EQ(g.data<float>()[i], e.data<float>()[i]) << "inter " << inter << " output " << k;
      }
    }
  }
}

}  // namespace
}  // namespace graft
