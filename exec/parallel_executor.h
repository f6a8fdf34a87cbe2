// Runs the steps of a graph as a dependency graph on a few threads (the session's parallel
// execution mode): a step starts once the steps it reads from have finished.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace graft {

class ParallelExecutor {
 public:
  // `after[i]` lists the steps step i waits for (each below i, so the graph order is one valid
  // order). `threads` run steps, the calling thread included; each runs OpenMP loops with a team
  // of `team` threads. Starts threads - 1 workers, which block while there is nothing to run.
  ParallelExecutor(std::vector<std::vector<int>> after, int threads, int team);
  ~ParallelExecutor();
  ParallelExecutor(const ParallelExecutor&) = delete;
  ParallelExecutor& operator=(const ParallelExecutor&) = delete;

  // Calls step(i) once for every step, on the calling thread or a worker, each after the steps
  // it waits for. After the first exception no step starts; the run waits for those running and
  // rethrows it. Runs of one executor take turns.
  void run(const std::function<void(size_t)>& step);

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

 private:
  // Takes and runs ready steps until the run is over; `lock` holds mutex_ on entry and exit.
  void work(std::unique_lock<std::mutex>& lock);
  void worker_loop();

  std::vector<std::vector<int>> next_;  // per step, the steps that wait for it
  std::vector<int> waits_;              // per step, how many steps it waits for
  int team_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one run at a time

  std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  const std::function<void(size_t)>* step_ = nullptr;  // the current run's, or null
  std::vector<int> missing_;                           // per step, predecessors still running
  std::vector<size_t> ready_;
  size_t finished_ = 0;
  int running_ = 0;
  std::exception_ptr error_;
  bool stop_ = false;
};

}  // namespace graft
