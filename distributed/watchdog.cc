#include "distributed/watchdog.h"

namespace graft::distributed {

Watchdog::Watchdog(std::function<void(const std::string&, const std::string&)> on_expire)
    : on_expire_(std::move(on_expire)), thread_([this] { run(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void Watchdog::arm(double seconds, std::string what, std::string peer) {
  {
    std::lock_guard lock(mutex_);
    deadline_ = Clock::now() +
                std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    what_ = std::move(what);
    peer_ = std::move(peer);
    ++generation_;
    armed_ = true;
  }
  wake_.notify_one();
}

void Watchdog::disarm() {
  std::lock_guard lock(mutex_);
  armed_ = false;
}

void Watchdog::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    if (!armed_) {
      wake_.wait(lock);
      continue;
    }
    const auto deadline = deadline_;
    const uint64_t generation = generation_;
    wake_.wait_until(lock, deadline, [&] { return stop_ || !armed_ || generation_ != generation; });
    if (!stop_ && armed_ && generation_ == generation && Clock::now() >= deadline) {
      armed_ = false;  // fires once, should on_expire_ return
      on_expire_(what_, peer_);
    }
  }
}

}  // namespace graft::distributed
