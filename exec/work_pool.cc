#include "exec/work_pool.h"

#include <omp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GRAFT_PAUSE() _mm_pause()
#else
#define GRAFT_PAUSE() std::this_thread::yield()
#endif

namespace graft {
namespace {

// How long an idle worker keeps polling for the next loop before it sleeps: longer than the gap
// between two products of a run (and between back-to-back runs of a small model), so their loops
// find the worker awake, and short against a time slice, so a worker beside a busy process yields
// its core soon. On 2 cores an MLP run (three 8 x 1024 products) took 0.19 ms with 50 us, 0.11 ms
// with 200 us and 0.15 ms on one thread.
constexpr auto kSpin = std::chrono::microseconds(100);

// One loop at a time. `state` is (generation << 1) | open; a worker takes part in a loop only
// if, after counting itself in `active`, it still reads the generation it woke for, so the caller
// that closes the loop and sees `active` at zero knows no worker will touch its units again.
struct Pool {
  std::mutex owner;
  std::atomic<uint32_t> state{0};
  std::atomic<int> active{0};
  std::atomic<int> sleepers{0};
  std::atomic<int64_t> next{0};
  int64_t units = 0;
  int allowed = 0;  // workers (by index) that may join the open loop
  void (*call)(void*, int64_t) = nullptr;
  void* body = nullptr;
  int workers = 0;  // started, all detached: the pool lives as long as the process
  // The first exception a unit threw; the caller rethrows it once every unit is done. Units
  // claimed after it still run (they are independent), so the loop ends in the usual way.
  std::mutex error_mutex;
  std::exception_ptr error;
};

thread_local bool in_pool_loop = false;

void claim(Pool& p) {
  for (int64_t unit; (unit = p.next.fetch_add(1)) < p.units;) {
    try {
      p.call(p.body, unit);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(p.error_mutex);
      if (!p.error) p.error = std::current_exception();
    }
  }
}

// The state of the next open loop after `seen`: spins for kSpin, then sleeps.
uint32_t wait_for_loop(Pool& p, uint32_t seen) {
  auto since = std::chrono::steady_clock::now();
  for (int polls = 1;; ++polls) {
    const uint32_t s = p.state.load();
    if ((s & 1) && s != seen) return s;
    if (polls % 64 == 0 && std::chrono::steady_clock::now() - since > kSpin) {
      p.sleepers.fetch_add(1);
      const uint32_t now = p.state.load();
      if (!((now & 1) && now != seen)) p.state.wait(now);
      p.sleepers.fetch_sub(1);
      since = std::chrono::steady_clock::now();
    }
    GRAFT_PAUSE();
  }
}

void work(Pool& p, int index) {
  in_pool_loop = true;
  // A unit that calls into OpenMP code (oneDNN's sgemm, a kernel's parallel loop) runs it on this
  // thread alone: the pool already spreads the loop over the cores.
  omp_set_num_threads(1);
  uint32_t seen = 0;
  for (;;) {
    seen = wait_for_loop(p, seen);
    p.active.fetch_add(1);
    if (p.state.load() == seen && index < p.allowed) claim(p);
    p.active.fetch_sub(1);
  }
}

Pool& pool() {
  // A child process after fork() has none of its parent's workers: it starts a pool of its own.
  static std::mutex mutex;
  static Pool* current = nullptr;
  static pid_t owner = 0;
  std::lock_guard<std::mutex> lock(mutex);
  if (current == nullptr || owner != getpid()) {
    current = new Pool();  // never freed: detached workers use it until the process exits
    owner = getpid();
  }
  return *current;
}

}  // namespace

namespace detail {

void run_units(int64_t units, void (*call)(void*, int64_t), void* body) {
  const int threads = in_pool_loop || omp_in_parallel() ? 1 : omp_get_max_threads();
  std::unique_lock<std::mutex> lock;
  Pool* p = nullptr;
  if (units > 1 && threads > 1) {
    p = &pool();
    lock = std::unique_lock<std::mutex>(p->owner, std::try_to_lock);
  }
  if (!lock.owns_lock()) {
    for (int64_t unit = 0; unit < units; ++unit) call(body, unit);
    return;
  }
  std::exception_ptr error;
  while (p->workers < threads - 1) {
    std::thread(work, std::ref(*p), p->workers).detach();
    ++p->workers;
  }
  p->units = units;
  p->call = call;
  p->body = body;
  p->allowed = threads - 1;
  p->next.store(0);
  const uint32_t open = (((p->state.load() >> 1) + 1) << 1) | 1;
  p->state.store(open);
  if (p->sleepers.load() > 0) p->state.notify_all();
  in_pool_loop = true;
  omp_set_num_threads(1);
  claim(*p);
  omp_set_num_threads(threads);
  in_pool_loop = false;
  p->state.store(open & ~uint32_t{1});
  while (p->active.load() > 0) GRAFT_PAUSE();
  std::swap(error, p->error);
  if (error) std::rethrow_exception(error);
}

}  // namespace detail
}  // namespace graft
