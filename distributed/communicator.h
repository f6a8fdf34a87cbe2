// Collective communication between the processes of a data-parallel job, on raw buffers.
// Backends: single process (size 1), MPI (CPU memory) and NCCL (CUDA device memory). Every call
// is bounded by a timeout; a collective that does not finish in time names itself, the rank, the
// step and the peer it waits for on stderr, and the process exits with status 1 rather than hang
// (a pending MPI or NCCL operation cannot be cancelled, so the process cannot go on safely).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "exec/dtype.h"
#include "ir/api.h"

namespace graft::distributed {

enum class ReduceOp { Sum, Average };

// "sum" or "average"; throws InvalidArgument naming `what` otherwise.
GRAFT_API ReduceOp parse_reduce_op(const std::string& name, const std::string& what);

// The default timeout: GRAFT_COLLECTIVE_TIMEOUT_S (seconds, may be fractional) when set, else
// 300 s. Throws InvalidArgument when the variable is not a positive number.
GRAFT_API double default_timeout_seconds();

class GRAFT_API Communicator {
 public:
  Communicator();
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  // "single", "mpi" or "nccl".
  virtual const char* backend() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Every rank calls each collective in the same order with the same count and dtype. Buffers
  // belong to the caller and are host memory for single and MPI, device memory for NCCL. Counts
  // are elements, not bytes. Invalid arguments (negative count, a root out of range, a dtype the
  // operation cannot handle) throw InvalidArgument; a failure reported by the transport throws
  // Fail with the collective, rank and step named, and leaves the communicator unusable.

  // Reduces `count` elements of `data` across ranks, in place. Average divides the sum by
  // size() in the element type (integer division truncates). Numeric dtypes only.
  virtual void all_reduce(void* data, int64_t count, DType dtype, ReduceOp op) = 0;
  // Copies `count` elements of `data` on rank `root` into `data` on every other rank.
  virtual void broadcast(void* data, int64_t count, DType dtype, int root) = 0;
  // Gathers `count` elements from every rank: `recv` holds size() * count elements, rank r's
  // `send` at offset r * count. `send` and `recv` must not overlap.
  virtual void all_gather(const void* send, void* recv, int64_t count, DType dtype) = 0;
  // Reduces size() * count elements of `send` across ranks and leaves block r (elements
  // r * count .. (r + 1) * count) in rank r's `recv`. `send` and `recv` must not overlap.
  virtual void reduce_scatter(const void* send, void* recv, int64_t count, DType dtype,
                              ReduceOp op) = 0;
  // The collectives above, enqueued without waiting for them, for device backends (NCCL): each is
  // enqueued on the backend's stream (the one it was made with) and this returns at once; the
  // caller orders its own streams around it with events on that stream and keeps the buffers
  // alive until it has run. The backend watches what it enqueued: a collective that fails or
  // outlives the timeout (counted from when it was enqueued) ends the process with itself, the
  // rank and the step named, as a stream waiting for it could not go on. Host backends (single,
  // MPI) run the blocking call.
  virtual void enqueue_all_reduce(void* data, int64_t count, DType dtype, ReduceOp op) {
    all_reduce(data, count, dtype, op);
  }
  virtual void enqueue_broadcast(void* data, int64_t count, DType dtype, int root) {
    broadcast(data, count, dtype, root);
  }
  virtual void enqueue_all_gather(const void* send, void* recv, int64_t count, DType dtype) {
    all_gather(send, recv, count, dtype);
  }
  virtual void enqueue_reduce_scatter(const void* send, void* recv, int64_t count, DType dtype,
                                      ReduceOp op) {
    reduce_scatter(send, recv, count, dtype, op);
  }
  // Returns once every rank has entered the barrier.
  virtual void barrier() = 0;
  // Ends this process with `code` and asks the launcher to end the other ranks (MPI_Abort), for
  // a rank that fails outside a collective while the others may wait in one. Does not return.
  [[noreturn]] virtual void abort(int code) = 0;

  // Seconds a collective may take before the process exits; must be positive.
  void set_timeout(double seconds);
  double timeout() const { return timeout_seconds_.load(); }
  // A counter the caller advances (the training step); named in errors.
  void set_step(int64_t step) { step_.store(step); }
  int64_t step() const { return step_.load(); }

 protected:
  // "all_reduce ([com.graft.AllReduce] node 'ar') of 4 float elements on rank 0 of 2 at step 3"
  std::string describe(const char* collective, int64_t count, DType dtype) const;
  // Writes the timeout error to stderr and exits with status 1. `peer` names whom the call
  // waited for ("peer rank 1", "root rank 0").
  [[noreturn]] void exit_on_timeout(const std::string& what, const std::string& peer) const;
  // The peers a collective waits for: the root for a non-root broadcast, every other rank else.
  std::string peers(int root = -1) const;
  // Validates a count and a root against this communicator; throws InvalidArgument.
  void check_args(const char* collective, int64_t count, DType dtype, int root = 0) const;
  // check_args, and the dtype must be reducible (numeric).
  void check_reduce_args(const char* collective, int64_t count, DType dtype) const;

 private:
  std::atomic<double> timeout_seconds_;
  std::atomic<int64_t> step_{0};
};

// Names the graph node (or other caller) on whose behalf the collectives of this thread run,
// for the duration of the scope; errors and timeouts include it.
class GRAFT_API CollectiveLabel {
 public:
  explicit CollectiveLabel(std::string label);
  ~CollectiveLabel();
  CollectiveLabel(const CollectiveLabel&) = delete;
  CollectiveLabel& operator=(const CollectiveLabel&) = delete;
  // The innermost label of this thread; empty when none.
  static const std::string& current();

 private:
  std::string label_;
  const std::string* previous_;
};

// The process's communicator, created on first use: MPI when the process was launched by an MPI
// launcher with more than one rank (OMPI_COMM_WORLD_SIZE or PMI_SIZE above 1; MPI is then
// initialized here and finalized at exit), single process otherwise, without touching MPI.
// Throws NotImplemented when launched with several ranks and graft was built without MPI.
GRAFT_API Communicator& world();

// The number of ranks the launcher started (1 when not launched by an MPI launcher).
GRAFT_API int launched_world_size();

}  // namespace graft::distributed
