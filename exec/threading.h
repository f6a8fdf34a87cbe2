// The CPU work's threads: the OpenMP team a run uses and how idle OpenMP threads wait.
//
// graft's loops and oneDNN's both run on GNU OpenMP (libgomp). libgomp reads how long an idle
// thread spins before it sleeps once, when it is loaded (GOMP_SPINCOUNT, else OMP_WAIT_POLICY:
// 300000 pause iterations when neither is set, milliseconds on most machines, spent at every
// barrier). Two processes whose teams share cores then starve each other, so graft asks for a
// short spin: the Python package sets GOMP_SPINCOUNT before it loads libgomp, and a C++ program
// sets it in its environment (docs/architecture.md, "Threads").
#pragma once

#include <string>

#include "ir/api.h"

namespace graft {

// The GOMP_SPINCOUNT graft asks for: about as long as a short parallel region, so back-to-back
// regions of one run find their threads awake, while a thread whose partner was preempted sleeps
// and yields the core. python/graft/__init__.py sets the same value.
inline constexpr const char* kOpenMPSpinCount = "3000";

// What the environment tells libgomp about idle threads: "GOMP_SPINCOUNT=<n>" or
// "OMP_WAIT_POLICY=<policy>" (GOMP_SPINCOUNT wins, as in libgomp), or "" when neither is set.
GRAFT_API std::string openmp_wait_setting();

// Once per process, when a session will run `threads` > 1 OpenMP threads and the environment
// leaves libgomp's long spin in place, says so on stderr with the setting to use. Never throws.
void warn_if_openmp_spins(int threads);

// The OpenMP team size a session's kernels see on the calling thread, for the scope of one
// construction or run: `threads` (0: the process's default, the cores it may use). The previous
// size is restored at the end, so sessions with different settings take turns on one thread.
class GRAFT_API OpenMPThreads {
 public:
  explicit OpenMPThreads(int threads);
  ~OpenMPThreads();
  OpenMPThreads(const OpenMPThreads&) = delete;
  OpenMPThreads& operator=(const OpenMPThreads&) = delete;
  int threads() const { return threads_; }

 private:
  int previous_;
  int threads_;
};

// The team size `threads` stands for: itself when positive, else the process's default.
GRAFT_API int openmp_threads(int threads);

}  // namespace graft
