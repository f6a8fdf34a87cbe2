#include "distributed/collective_stream.h"

#include "distributed/communicator.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

namespace graft::distributed {
namespace {

std::atomic<bool> stream_started{false};

class Stream {
 public:
  Stream() : thread_([this] { loop(); }) { thread_.detach(); }

  std::future<void> submit(std::function<void()> work) {
    std::packaged_task<void()> task(std::move(work));
    std::future<void> done = task.get_future();
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(task));
    }
    ready_.notify_one();
    return done;
  }

 private:
  void loop() {
    for (;;) {
      std::packaged_task<void()> task;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return !queue_.empty(); });
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::packaged_task<void()>> queue_;
  std::thread thread_;
};

}  // namespace

std::future<void> submit_collective(std::function<void()> work) {
  // Never destroyed: its thread waits for work until the process ends.
  static auto* stream = new Stream();
  stream_started.store(true);
  return stream->submit(std::move(work));
}

void run_collective_in_order(const Communicator& comm, const std::string& label,
                             const std::function<void()>& work) {
  if (comm.size() == 1 || !stream_started.load()) {
    const CollectiveLabel scope(label);
    work();
    return;
  }
  submit_collective([&] {
    const CollectiveLabel scope(label);
    work();
  }).get();
}

bool overlap_collectives(int compute_threads) {
  // The environment is read once; only the thread count varies between calls.
  static const int forced = [] {
    const char* v = std::getenv("GRAFT_OVERLAP_COLLECTIVES");
    if (v == nullptr || *v == '\0') return -1;
    return std::strcmp(v, "0") != 0 ? 1 : 0;
  }();
  static const int local_ranks = [] {
    for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"}) {
      if (const char* v = std::getenv(name)) return std::max(1, std::atoi(v));
    }
    return 1;
  }();
  static const auto cores = static_cast<int>(std::thread::hardware_concurrency());
  if (forced >= 0) return forced == 1;
  return cores >= local_ranks * (std::max(1, compute_threads) + 1);
}

}  // namespace graft::distributed
