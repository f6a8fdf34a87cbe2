#include "exec/work_pool.h"

#include <gtest/gtest.h>
#include <omp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "exec/threading.h"

namespace graft {
namespace {

// Counts how often each unit ran and on which threads.
struct Tally {
  explicit Tally(int64_t units) : runs(static_cast<size_t>(units)) {}
  void operator()(int64_t unit) {
    runs[static_cast<size_t>(unit)].fetch_add(1);
    // A little work per unit, so workers have time to arrive.
    volatile double sink = 0;
    for (int i = 0; i < 2000; ++i) sink = sink + i;
  }
  bool each_once() const {
    for (const auto& r : runs)
      if (r.load() != 1) return false;
    return true;
  }
  std::vector<std::atomic<int>> runs;
};

TEST(WorkPool, RunsEveryUnitOnce) {
  const OpenMPThreads threads(4);
  for (int64_t units : {0, 1, 2, 3, 17, 1000}) {
    for (int repeat = 0; repeat < 20; ++repeat) {
      Tally tally(units);
      run_units(units, tally);
      EXPECT_TRUE(tally.each_once()) << units << " units";
    }
  }
}

TEST(WorkPool, UsesWorkersUpToTheTeamSize) {
  const OpenMPThreads threads(3);
  std::mutex mutex;
  std::set<std::thread::id> seen;
  for (int repeat = 0; repeat < 50 && seen.size() < 2; ++repeat) {
    run_units(64, [&](int64_t) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        seen.insert(std::this_thread::get_id());
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    });
  }
  EXPECT_GE(seen.size(), 2u);
  EXPECT_LE(seen.size(), 3u);

  const OpenMPThreads one(1);
  seen.clear();
  run_units(64, [&](int64_t) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(seen, std::set<std::thread::id>{std::this_thread::get_id()});
}

TEST(WorkPool, NestedLoopsRunOnTheirThread) {
  const OpenMPThreads threads(2);
  std::atomic<int> inner_units{0}, foreign{0};
  run_units(8, [&](int64_t) {
    const auto outer = std::this_thread::get_id();
    run_units(5, [&](int64_t) {
      inner_units.fetch_add(1);
      if (std::this_thread::get_id() != outer) foreign.fetch_add(1);
    });
  });
  EXPECT_EQ(inner_units.load(), 40);
  EXPECT_EQ(foreign.load(), 0);
  // Inside an OpenMP region too.
  std::atomic<int> in_region{0};
#pragma omp parallel num_threads(2)
  run_units(10, [&](int64_t) { in_region.fetch_add(1); });
  EXPECT_EQ(in_region.load(), 10 * 2);
}

TEST(WorkPool, ExceptionsReachTheCaller) {
  const OpenMPThreads threads(2);
  for (int repeat = 0; repeat < 20; ++repeat) {
    std::atomic<int> ran{0};
    EXPECT_THROW(run_units(64,
                           [&](int64_t unit) {
                             ran.fetch_add(1);
                             if (unit == 37) throw std::runtime_error("unit 37");
                           }),
                 std::runtime_error);
    EXPECT_EQ(ran.load(), 64);
  }
  // The pool still runs the next loop.
  Tally tally(40);
  run_units(40, tally);
  EXPECT_TRUE(tally.each_once());
}

TEST(WorkPool, OpenMPInsideAUnitStaysOnItsThread) {
  const OpenMPThreads threads(2);
  std::atomic<int> wider{0};
  run_units(32, [&](int64_t) {
    if (omp_get_max_threads() != 1) wider.fetch_add(1);
    int team = 0;
#pragma omp parallel
    {
#pragma omp single
      team = omp_get_num_threads();
    }
    if (team != 1) wider.fetch_add(1);
    volatile double sink = 0;
    for (int i = 0; i < 2000; ++i) sink = sink + i;
  });
  EXPECT_EQ(wider.load(), 0);
  // The caller's team size is back once the loop is over.
  EXPECT_EQ(omp_get_max_threads(), 2);
}

TEST(WorkPool, ConcurrentCallersAllFinish) {
  const OpenMPThreads threads(2);
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      const OpenMPThreads mine(2);
      for (int repeat = 0; repeat < 200; ++repeat) {
        Tally tally(33);
        run_units(33, tally);
        if (!tally.each_once()) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(WorkPool, WorksInAForkedChild) {
  const OpenMPThreads threads(2);
  Tally before(50);
  run_units(50, before);
  ASSERT_TRUE(before.each_once());
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Tally tally(50);
    run_units(50, tally);
    _exit(tally.each_once() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace graft
