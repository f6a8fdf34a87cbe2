// The NCCL backend, built as its own library (libgraft_nccl.so) that graft loads only when an NCCL
// communicator is asked for, so importing graft never loads NCCL or the CUDA runtime (another
// framework in the process may bring its own NCCL). A non-blocking ncclComm whose collectives run
// on a CUDA stream. Each blocking call enqueues the collective and polls the stream and
// ncclCommGetAsyncError until it completes, an error is reported, or the timeout passes (then the
// communicator is aborted and the process exits). The enqueue_ calls return at once; a watcher
// thread polls what they enqueued the same way, in order, and ends the process on a failure or a
// timeout.
#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

#include "distributed/backends.h"
#include "exec/error.h"

namespace graft::distributed {
namespace {

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::Float:
      return ncclFloat32;
    case DType::Double:
      return ncclFloat64;
    case DType::Float16:
      return ncclFloat16;
    case DType::BFloat16:
      return ncclBfloat16;
    case DType::Int8:
      return ncclInt8;
    case DType::UInt8:
      return ncclUint8;
    case DType::Int32:
      return ncclInt32;
    case DType::UInt32:
      return ncclUint32;
    case DType::Int64:
      return ncclInt64;
    case DType::UInt64:
      return ncclUint64;
    default:
      return ncclNumTypes;
  }
}

ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::Average ? ncclAvg : ncclSum; }

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& bootstrap, int device, void* stream)
      : rank_(bootstrap.rank()), size_(bootstrap.size()), device_(device) {
    set_timeout(bootstrap.timeout());
    check_cuda(cudaSetDevice(device_), "cudaSetDevice");
    if (stream != nullptr) {
      stream_ = static_cast<cudaStream_t>(stream);
    } else {
      check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
      owns_stream_ = true;
    }
    check_cuda(cudaMalloc(&scratch_, sizeof(float)), "cudaMalloc");
    ncclUniqueId id{};
    if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    bootstrap.broadcast(&id, sizeof(id), DType::UInt8, 0);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    check_nccl(ncclCommInitRankConfig(&comm_, size_, id, rank_, &config), "ncclCommInitRank");
    wait("ncclCommInitRank", peers(), /*on_stream=*/false);
  }

  ~NcclCommunicator() override {
    {
      std::lock_guard lock(watch_mutex_);
      stop_watching_ = true;
    }
    watch_wake_.notify_all();
    if (watcher_.joinable()) watcher_.join();
    for (const Watched& w : watched_) cudaEventDestroy(w.done);
    if (comm_ != nullptr) {
      if (broken_) {
        ncclCommAbort(comm_);
      } else {
        ncclCommDestroy(comm_);
      }
    }
    cudaFree(scratch_);
    if (owns_stream_) cudaStreamDestroy(stream_);
  }

  const char* backend() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce(void* data, int64_t count, DType dtype, ReduceOp op) override {
    reduce_in_place(data, count, dtype, op, true);
  }
  void enqueue_all_reduce(void* data, int64_t count, DType dtype, ReduceOp op) override {
    reduce_in_place(data, count, dtype, op, false);
  }
  void broadcast(void* data, int64_t count, DType dtype, int root) override {
    broadcast_from(data, count, dtype, root, true);
  }
  void enqueue_broadcast(void* data, int64_t count, DType dtype, int root) override {
    broadcast_from(data, count, dtype, root, false);
  }
  void all_gather(const void* send, void* recv, int64_t count, DType dtype) override {
    gather(send, recv, count, dtype, true);
  }
  void enqueue_all_gather(const void* send, void* recv, int64_t count, DType dtype) override {
    gather(send, recv, count, dtype, false);
  }
  void reduce_scatter(const void* send, void* recv, int64_t count, DType dtype,
                      ReduceOp op) override {
    scatter(send, recv, count, dtype, op, true);
  }
  void enqueue_reduce_scatter(const void* send, void* recv, int64_t count, DType dtype,
                              ReduceOp op) override {
    scatter(send, recv, count, dtype, op, false);
  }

  [[noreturn]] void abort(int code) override {
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
    ::_exit(code);
  }

  // NCCL has no barrier: an all-reduce of one float is one.
  void barrier() override {
    std::lock_guard lock(mutex_);
    const std::string what = describe("barrier", -1, DType::Undefined);
    check_nccl(ncclAllReduce(scratch_, scratch_, 1, ncclFloat32, ncclSum, comm_, stream_), what);
    wait(what, peers(), true);
  }

 private:
  using Clock = std::chrono::steady_clock;

  // A collective enqueued without waiting, for the watcher.
  struct Watched {
    cudaEvent_t done;
    Clock::time_point deadline;
    std::string what;
    std::string peer;
  };

  // Each collective, then a wait for it here (`block`) or by the watcher.
  void reduce_in_place(void* data, int64_t count, DType dtype, ReduceOp op, bool block) {
    check_nccl_reduce("all_reduce", count, dtype);
    std::lock_guard lock(mutex_);
    const std::string what = describe("all_reduce", count, dtype);
    check_nccl(ncclAllReduce(data, data, static_cast<size_t>(count), nccl_type(dtype), nccl_op(op),
                             comm_, stream_),
               what);
    finish(what, peers(), block);
  }

  void broadcast_from(void* data, int64_t count, DType dtype, int root, bool block) {
    check_args("broadcast", count, dtype, root);
    std::lock_guard lock(mutex_);
    const std::string what = describe("broadcast", count, dtype);
    check_nccl(ncclBroadcast(data, data, bytes(count, dtype), ncclUint8, root, comm_, stream_),
               what);
    finish(what, peers(root), block);
  }

  void gather(const void* send, void* recv, int64_t count, DType dtype, bool block) {
    check_args("all_gather", count, dtype);
    std::lock_guard lock(mutex_);
    const std::string what = describe("all_gather", count, dtype);
    check_nccl(ncclAllGather(send, recv, bytes(count, dtype), ncclUint8, comm_, stream_), what);
    finish(what, peers(), block);
  }

  void scatter(const void* send, void* recv, int64_t count, DType dtype, ReduceOp op, bool block) {
    check_nccl_reduce("reduce_scatter", count, dtype);
    std::lock_guard lock(mutex_);
    const std::string what = describe("reduce_scatter", count, dtype);
    check_nccl(ncclReduceScatter(send, recv, static_cast<size_t>(count), nccl_type(dtype),
                                 nccl_op(op), comm_, stream_),
               what);
    finish(what, peers(), block);
  }

  void finish(const std::string& what, const std::string& peer, bool block) {
    if (block) {
      wait(what, peer, true);
      return;
    }
    cudaEvent_t done = nullptr;
    check_cuda(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), what);
    if (cudaEventRecord(done, stream_) != cudaSuccess) {
      cudaEventDestroy(done);
      check_cuda(cudaGetLastError(), what);
    }
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(timeout()));
    std::lock_guard lock(watch_mutex_);
    if (!watcher_.joinable()) watcher_ = std::thread([this, comm = comm_] { watch(comm); });
    watched_.push_back({done, deadline, what, peer});
    watch_wake_.notify_one();
  }

  // The watcher thread: follows the enqueued collectives in order until the communicator goes.
  void watch(ncclComm_t comm) {
    cudaSetDevice(device_);
    std::unique_lock lock(watch_mutex_);
    for (;;) {
      watch_wake_.wait(lock, [&] { return stop_watching_ || !watched_.empty(); });
      if (stop_watching_) return;
      const Watched& w = watched_.front();
      const cudaError_t query = cudaEventQuery(w.done);
      if (query == cudaSuccess) {
        cudaEventDestroy(w.done);
        watched_.pop_front();
        continue;
      }
      // At exit the runtime may be unloaded while work is still enqueued: nothing to watch then.
      if (query == cudaErrorCudartUnloading) return;
      if (query != cudaErrorNotReady) exit_on_failure(comm, w.what, cudaGetErrorString(query));
      ncclResult_t state = ncclSuccess;
      const ncclResult_t asked = ncclCommGetAsyncError(comm, &state);
      if (asked != ncclSuccess) exit_on_failure(comm, w.what, ncclGetErrorString(asked));
      if (state != ncclSuccess && state != ncclInProgress)
        exit_on_failure(comm, w.what, ncclGetErrorString(state));
      if (Clock::now() > w.deadline) {
        ncclCommAbort(comm);
        exit_on_timeout(w.what, w.peer);
      }
      watch_wake_.wait_for(lock, std::chrono::milliseconds(1));
    }
  }

  // For the watcher, which cannot throw to the caller: the message goes to stderr and the
  // process ends, as on a timeout.
  [[noreturn]] static void exit_on_failure(ncclComm_t comm, const std::string& what,
                                           const std::string& error) {
    const std::string message = "graft.distributed: " + what + " failed: " + error + "; exiting\n";
    [[maybe_unused]] const ssize_t written = ::write(2, message.data(), message.size());
    ncclCommAbort(comm);
    ::_exit(1);
  }

  static size_t bytes(int64_t count, DType dtype) {
    return static_cast<size_t>(count) * dtype_size(dtype);
  }

  void check_nccl_reduce(const char* collective, int64_t count, DType dtype) const {
    check_reduce_args(collective, count, dtype);
    if (nccl_type(dtype) == ncclNumTypes) {
      throw InvalidArgument(describe(collective, count, dtype) + ": NCCL cannot reduce " +
                            dtype_name(dtype) + " elements");
    }
  }

  void check_cuda(cudaError_t code, const std::string& what) {
    if (code == cudaSuccess) return;
    broken_ = true;
    throw Fail("graft.distributed: " + what + " failed on device " + std::to_string(device_) +
               ": " + cudaGetErrorString(code));
  }

  // ncclInProgress is success for a non-blocking communicator: wait() sees the outcome.
  void check_nccl(ncclResult_t code, const std::string& what) {
    if (code == ncclSuccess || code == ncclInProgress) return;
    broken_ = true;
    throw Fail("graft.distributed: " + what + " failed: " + ncclGetErrorString(code) + " (" +
               ncclGetLastError(comm_) + ")");
  }

  // Returns once the communicator has no operation in progress and, with `on_stream`, the
  // stream has drained.
  void wait(const std::string& what, const std::string& peer, bool on_stream) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout());
    for (;;) {
      ncclResult_t state = ncclSuccess;
      check_nccl(ncclCommGetAsyncError(comm_, &state), what);
      if (state != ncclSuccess && state != ncclInProgress) check_nccl(state, what);
      if (state == ncclSuccess) {
        if (!on_stream) return;
        const cudaError_t query = cudaStreamQuery(stream_);
        if (query == cudaSuccess) return;
        if (query != cudaErrorNotReady) check_cuda(query, what);
      }
      if (Clock::now() > deadline) {
        broken_ = true;
        ncclCommAbort(comm_);
        comm_ = nullptr;
        exit_on_timeout(what, peer);
      }
      std::this_thread::yield();
    }
  }

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  void* scratch_ = nullptr;
  int rank_;
  int size_;
  int device_;
  bool owns_stream_ = false;
  bool broken_ = false;
  std::mutex mutex_;
  // The enqueued collectives not known to be done, oldest first, and the thread that watches them.
  std::mutex watch_mutex_;
  std::condition_variable watch_wake_;
  std::deque<Watched> watched_;
  std::thread watcher_;
  bool stop_watching_ = false;
};

}  // namespace

}  // namespace graft::distributed

// The entry point distributed/nccl_loader.cc finds with dlopen: a new communicator, or nullptr
// with the reason in `error` (exceptions do not cross the library boundary).
extern "C" __attribute__((visibility("default"))) graft::distributed::Communicator*
graft_nccl_create(graft::distributed::Communicator* bootstrap, int device, void* cuda_stream,
                  char* error, size_t error_size) {
  try {
    return new graft::distributed::NcclCommunicator(*bootstrap, device, cuda_stream);
  } catch (const std::exception& e) {
    std::snprintf(error, error_size, "%s", e.what());
    return nullptr;
  }
}
