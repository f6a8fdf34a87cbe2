// The NCCL communicator (libgraft_nccl.so) on a CUDA device: every collective on device buffers
// against values computed on the host, blocking and enqueued (the enqueue_ calls, then a blocking
// barrier on the same stream before the host reads), 1 rank and, where the machine allows it, 2
// ranks (two threads of this process, one NCCL rank each). Exits 77 (skipped) with the reason
// printed when no CUDA device is present, 0 when every check passes, 1 otherwise.
//
//   graft_nccl_collectives              the checks
//   graft_nccl_collectives --hang S     child mode: rank 0 of 2 whose peer never joins, timeout
//                                       S seconds; must exit 1 naming ncclCommInitRank
#include <cuda_runtime.h>
#include <nccl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "distributed/backends.h"

extern "C" graft::distributed::Communicator* graft_nccl_create(
    graft::distributed::Communicator* bootstrap, int device, void* cuda_stream, char* error,
    size_t error_size);

extern char** environ;

namespace graft::distributed {
namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("  %-64s %s\n", what.c_str(), ok ? "ok" : "FAILED");
  if (!ok) ++failures;
}

void cuda(cudaError_t code, const char* what) {
  if (code != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(code));
    std::exit(1);
  }
}

// Carries NCCL's unique id between the threads of one process, standing in for MPI: rank r of
// `size`, sharing one Slot. Only broadcast is needed to create an NCCL communicator.
struct Slot {
  std::mutex mutex;
  std::condition_variable ready;
  std::vector<unsigned char> bytes;
  bool full = false;
};

class ThreadBootstrap final : public Communicator {
 public:
  ThreadBootstrap(Slot& slot, int rank, int size) : slot_(slot), rank_(rank), size_(size) {}
  const char* backend() const override { return "threads"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void broadcast(void* data, int64_t count, DType dtype, int root) override {
    const size_t n = static_cast<size_t>(count) * dtype_size(dtype);
    std::unique_lock lock(slot_.mutex);
    if (rank_ == root) {
      slot_.bytes.assign(static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + n);
      slot_.full = true;
      slot_.ready.notify_all();
    } else {
      slot_.ready.wait(lock, [&] { return slot_.full; });
      std::memcpy(data, slot_.bytes.data(), n);
    }
  }
  void all_reduce(void*, int64_t, DType, ReduceOp) override { unsupported(); }
  void all_gather(const void*, void*, int64_t, DType) override { unsupported(); }
  void reduce_scatter(const void*, void*, int64_t, DType, ReduceOp) override { unsupported(); }
  void barrier() override { unsupported(); }
  [[noreturn]] void abort(int code) override { std::_Exit(code); }

 private:
  [[noreturn]] static void unsupported() {
    std::fprintf(stderr, "the thread bootstrap only broadcasts\n");
    std::exit(1);
  }
  Slot& slot_;
  int rank_;
  int size_;
};

std::unique_ptr<Communicator> make_nccl(Communicator& bootstrap, std::string* error) {
  char text[1024] = {0};
  Communicator* comm = graft_nccl_create(&bootstrap, 0, nullptr, text, sizeof(text));
  if (comm == nullptr) *error = text;
  return std::unique_ptr<Communicator>(comm);
}

// Device buffer of `n` floats with host copies in and out.
struct DeviceFloats {
  explicit DeviceFloats(size_t n) : count(n) {
    cuda(cudaMalloc(&data, std::max<size_t>(n, 1) * sizeof(float)), "cudaMalloc");
  }
  ~DeviceFloats() { cudaFree(data); }
  void put(const std::vector<float>& v) {
    cuda(cudaMemcpy(data, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice), "H2D");
  }
  std::vector<float> get() const {
    std::vector<float> v(count);
    cuda(cudaMemcpy(v.data(), data, count * sizeof(float), cudaMemcpyDeviceToHost), "D2H");
    return v;
  }
  float* data = nullptr;
  size_t count;
};

std::vector<float> pattern(size_t n, int rank) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>((i * 7 + 3) % 1001) * 0.25f + rank;
  return v;
}

bool near(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::fabs(got[i] - want[i]) > 1e-6f * (1.0f + std::fabs(want[i]))) return false;
  return true;
}

// Every collective of `comm` (rank r of size s), checked against host arithmetic over the
// pattern each rank contributes; with `enqueued`, through the enqueue_ calls, each followed by a
// barrier (a blocking collective on the same stream) before the host reads the result.
void run_collectives(Communicator& comm, size_t n, bool enqueued, std::vector<std::string>* log) {
  const int r = comm.rank();
  const int s = comm.size();
  auto report = [&](bool ok, const std::string& what) {
    log->push_back("rank " + std::to_string(r) + "/" + std::to_string(s) +
                   " n=" + std::to_string(n) + (enqueued ? " enqueued " : " ") + what +
                   (ok ? "|ok" : "|FAILED"));
  };
  const auto count = static_cast<int64_t>(n);
  auto all_reduce = [&](float* data, ReduceOp op) {
    if (enqueued) {
      comm.enqueue_all_reduce(data, count, DType::Float, op);
      comm.barrier();
    } else {
      comm.all_reduce(data, count, DType::Float, op);
    }
  };
  std::vector<float> sum(n, 0.0f);
  for (int q = 0; q < s; ++q) {
    const auto p = pattern(n, q);
    for (size_t i = 0; i < n; ++i) sum[i] += p[i];
  }
  std::vector<float> avg(sum);
  for (float& x : avg) x /= static_cast<float>(s);

  DeviceFloats buf(n);
  buf.put(pattern(n, r));
  all_reduce(buf.data, ReduceOp::Sum);
  report(near(buf.get(), sum), "all_reduce sum");

  buf.put(pattern(n, r));
  all_reduce(buf.data, ReduceOp::Average);
  report(near(buf.get(), avg), "all_reduce average");

  buf.put(pattern(n, r));
  if (enqueued) {
    comm.enqueue_broadcast(buf.data, count, DType::Float, s - 1);
    comm.barrier();
  } else {
    comm.broadcast(buf.data, count, DType::Float, s - 1);
  }
  report(near(buf.get(), pattern(n, s - 1)), "broadcast from the last rank");

  DeviceFloats gathered(n * static_cast<size_t>(s));
  buf.put(pattern(n, r));
  if (enqueued) {
    comm.enqueue_all_gather(buf.data, gathered.data, count, DType::Float);
    comm.barrier();
  } else {
    comm.all_gather(buf.data, gathered.data, count, DType::Float);
  }
  std::vector<float> want_gather;
  for (int q = 0; q < s; ++q) {
    const auto p = pattern(n, q);
    want_gather.insert(want_gather.end(), p.begin(), p.end());
  }
  report(near(gathered.get(), want_gather), "all_gather");

  // reduce_scatter: each rank sends s * n elements (its pattern repeated with a block offset).
  DeviceFloats send(n * static_cast<size_t>(s));
  std::vector<float> mine;
  for (int b = 0; b < s; ++b) {
    auto p = pattern(n, r);
    for (float& x : p) x += static_cast<float>(b) * 1000.0f;
    mine.insert(mine.end(), p.begin(), p.end());
  }
  send.put(mine);
  if (enqueued) {
    comm.enqueue_reduce_scatter(send.data, buf.data, count, DType::Float, ReduceOp::Sum);
    comm.barrier();
  } else {
    comm.reduce_scatter(send.data, buf.data, count, DType::Float, ReduceOp::Sum);
  }
  std::vector<float> want_block(sum);
  for (float& x : want_block) x += static_cast<float>(r) * 1000.0f * static_cast<float>(s);
  report(near(buf.get(), want_block), "reduce_scatter sum");

  comm.barrier();
  report(true, "barrier returned");
}

void print_log(const std::vector<std::string>& log) {
  for (const auto& line : log) {
    const auto bar = line.rfind('|');
    check(line.substr(bar + 1) == "ok", line.substr(0, bar));
  }
}

// Rank 0 of 2 whose peer never arrives: creating the communicator must time out and exit 1.
int hang_child(double timeout) {
  Slot slot;
  ThreadBootstrap bootstrap(slot, 0, 2);
  bootstrap.set_timeout(timeout);
  std::string error;
  auto comm = make_nccl(bootstrap, &error);
  std::fprintf(stderr, "communicator returned without its peer: %s\n", error.c_str());
  return 0;
}

// Runs this program in child mode; its stderr comes back in `err`.
int run_hang_child(const char* self, double timeout, double* seconds, int* status,
                   std::string* err) {
  const std::string arg = std::to_string(timeout);
  char* argv[] = {const_cast<char*>(self), const_cast<char*>("--hang"),
                  const_cast<char*>(arg.c_str()), nullptr};
  int fds[2];
  if (pipe(fds) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  pid_t pid = 0;
  const auto start = std::chrono::steady_clock::now();
  const int spawned = posix_spawn(&pid, self, &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (spawned != 0) return -1;
  char chunk[4096];
  for (ssize_t got; (got = read(fds[0], chunk, sizeof(chunk))) > 0;)
    err->append(chunk, static_cast<size_t>(got));
  close(fds[0]);
  waitpid(pid, status, 0);
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return 0;
}

int run(const char* self) {
  int devices = 0;
  const cudaError_t probe = cudaGetDeviceCount(&devices);
  if (probe != cudaSuccess || devices == 0) {
    std::printf("SKIPPED: no CUDA device (%s)\n",
                probe != cudaSuccess ? cudaGetErrorString(probe) : "device count 0");
    return 77;
  }
  cudaDeviceProp prop{};
  cuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  int nccl_version = 0;
  ncclGetVersion(&nccl_version);
  int runtime = 0;
  int driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  std::printf("device 0: %s, %d devices; CUDA runtime %d, driver %d; NCCL %d (built against %d)\n",
              prop.name, devices, runtime, driver, nccl_version, NCCL_VERSION_CODE);

  std::printf("1 rank:\n");
  {
    auto bootstrap = make_single_process_communicator();
    std::string error;
    auto comm = make_nccl(*bootstrap, &error);
    check(comm != nullptr, "NCCL communicator of 1 rank " + error);
    if (comm) {
      check(std::string(comm->backend()) == "nccl", "backend() is nccl");
      for (bool enqueued : {false, true}) {
        for (size_t n : {size_t{1}, size_t{1000}, size_t{1} << 20, size_t{25} << 18}) {
          std::vector<std::string> log;
          run_collectives(*comm, n, enqueued, &log);
          print_log(log);
        }
      }
    }
  }

  std::printf("2 ranks on device 0 (two threads):\n");
  {
    Slot slot;
    std::vector<std::string> logs[2];
    std::string errors[2];
    std::vector<std::thread> threads;
    for (int r = 0; r < 2; ++r) {
      threads.emplace_back([&, r] {
        cuda(cudaSetDevice(0), "cudaSetDevice");
        ThreadBootstrap bootstrap(slot, r, 2);
        bootstrap.set_timeout(60);
        try {
          auto comm = make_nccl(bootstrap, &errors[r]);
          if (!comm) return;
          for (bool enqueued : {false, true}) {
            for (size_t n : {size_t{1000}, size_t{1} << 20})
              run_collectives(*comm, n, enqueued, &logs[r]);
          }
        } catch (const std::exception& e) {
          errors[r] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    if (!errors[0].empty() || !errors[1].empty()) {
      // NCCL refuses two ranks of one communicator on one device; that is a property of the
      // machine (one GPU), reported rather than counted.
      std::printf("  not run on this machine: rank 0: %s; rank 1: %s\n", errors[0].c_str(),
                  errors[1].c_str());
    } else {
      print_log(logs[0]);
      print_log(logs[1]);
    }
  }

  std::printf("timeout (rank 0 of 2 whose peer never joins, 3 s):\n");
  {
    double seconds = 0;
    int status = 0;
    std::string err;
    check(run_hang_child(self, 3.0, &seconds, &status, &err) == 0, "child started");
    std::printf("  child's stderr: %s", err.c_str());
    check(err.find("ncclCommInitRank") != std::string::npos, "the error names ncclCommInitRank");
    const bool exited_1 = WIFEXITED(status) && WEXITSTATUS(status) == 1;
    check(exited_1, "child exited with status 1 after " + std::to_string(seconds) + " s");
    check(seconds < 3.0 + 30.0, "within the timeout plus 30 s");
  }

  std::printf("%d failed\n", failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace graft::distributed

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--hang") == 0)
    return graft::distributed::hang_child(std::atof(argv[2]));
  return graft::distributed::run(argv[0]);
}
