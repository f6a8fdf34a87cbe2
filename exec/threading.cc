#include "exec/threading.h"

#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace graft {

namespace {

// The team size of a thread that never set one: OMP_NUM_THREADS, else the cores the process may
// use. Read once, before any session changes the first thread's.
int default_threads() {
  static const int threads = omp_get_max_threads();
  return threads;
}

}  // namespace

std::string openmp_wait_setting() {
  for (const char* name : {"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"}) {
    if (const char* value = std::getenv(name)) return std::string(name) + "=" + value;
  }
  return "";
}

void warn_if_openmp_spins(int threads) {
  if (openmp_threads(threads) <= 1 || !openmp_wait_setting().empty()) return;
  static std::once_flag warned;
  std::call_once(warned, [] {
    std::fprintf(stderr,
                 "graft: GOMP_SPINCOUNT and OMP_WAIT_POLICY are unset, so idle OpenMP threads "
                 "spin 300000 times at every barrier and starve other processes on these cores; "
                 "start the program with GOMP_SPINCOUNT=%s (libgomp reads it when it loads)\n",
                 kOpenMPSpinCount);
  });
}

int openmp_threads(int threads) { return threads > 0 ? threads : default_threads(); }

OpenMPThreads::OpenMPThreads(int threads)
    : previous_(omp_get_max_threads()), threads_(openmp_threads(threads)) {
  default_threads();
  omp_set_num_threads(threads_);
}

OpenMPThreads::~OpenMPThreads() { omp_set_num_threads(previous_); }

}  // namespace graft
