#include "exec/parallel_executor.h"

#include "exec/threading.h"

namespace graft {

ParallelExecutor::ParallelExecutor(std::vector<std::vector<int>> after, int threads, int team)
    : next_(after.size()), waits_(after.size(), 0), team_(team) {
  for (size_t i = 0; i < after.size(); ++i) {
    for (int j : after[i]) next_[static_cast<size_t>(j)].push_back(static_cast<int>(i));
    waits_[i] = static_cast<int>(after[i].size());
  }
  for (int t = 1; t < threads; ++t) workers_.emplace_back([this] { worker_loop(); });
}

ParallelExecutor::~ParallelExecutor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ParallelExecutor::run(const std::function<void(size_t)>& step) {
  if (waits_.empty()) return;
  const std::lock_guard<std::mutex> one_run(run_mutex_);
  const OpenMPThreads team(team_);
  std::unique_lock<std::mutex> lock(mutex_);
  step_ = &step;
  missing_ = waits_;
  ready_.clear();
  for (size_t i = waits_.size(); i-- > 0;) {
    if (waits_[i] == 0) ready_.push_back(i);
  }
  finished_ = 0;
  running_ = 0;
  error_ = nullptr;
  wake_.notify_all();
  work(lock);
  wake_.wait(lock, [&] { return running_ == 0; });
  step_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

void ParallelExecutor::work(std::unique_lock<std::mutex>& lock) {
  while (step_ && finished_ < waits_.size() && !(error_ && running_ == 0)) {
    if (ready_.empty() || error_) {
      wake_.wait(lock);
      continue;
    }
    const size_t i = ready_.back();
    ready_.pop_back();
    ++running_;
    lock.unlock();
    std::exception_ptr error;
    try {
      (*step_)(i);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    --running_;
    ++finished_;
    if (error && !error_) error_ = error;
    if (!error_) {
      for (int n : next_[i]) {
        if (--missing_[static_cast<size_t>(n)] == 0) ready_.push_back(static_cast<size_t>(n));
      }
    }
    // Workers wait for steps to become ready; the caller also for the run's end.
    wake_.notify_all();
  }
}

void ParallelExecutor::worker_loop() {
  const OpenMPThreads team(team_);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    if (step_ && !ready_.empty() && !error_) {
      work(lock);
    } else {
      wake_.wait(lock);
    }
  }
}

}  // namespace graft
