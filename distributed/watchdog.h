// A thread that ends the process when an operation outlives its deadline. The MPI backend arms
// it around each blocking collective, so the collective runs at full speed in the caller's
// thread and still cannot hang the process.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace graft::distributed {

class Watchdog {
 public:
  // `on_expire(what, peer)` runs on the watchdog thread when an armed operation passes its
  // deadline, once per arm(); it is expected not to return (it ends the process).
  explicit Watchdog(std::function<void(const std::string&, const std::string&)> on_expire);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Starts timing one operation, described by `what` and the `peer` it waits for.
  void arm(double seconds, std::string what, std::string peer);
  // The operation finished in time.
  void disarm();

 private:
  using Clock = std::chrono::steady_clock;
  void run();

  std::function<void(const std::string&, const std::string&)> on_expire_;
  std::mutex mutex_;
  std::condition_variable wake_;
  Clock::time_point deadline_;
  std::string what_;
  std::string peer_;
  uint64_t generation_ = 0;  // advances with every arm(), so a stale wait never fires
  bool armed_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace graft::distributed
