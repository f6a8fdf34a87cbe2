// The MPI backend. Collectives are MPI's blocking ones, timed by a watchdog thread that ends the
// process when one outlives the timeout. (Open MPI's non-blocking collectives polled with
// MPI_Test were measured at half the speed of the blocking ones for a 26 MB all-reduce on 2
// ranks: libnbc's algorithms, not the tuned ones.) MPI reports errors as return codes
// (MPI_ERRORS_RETURN), turned into Fail.
#include <mpi.h>
#include <unistd.h>

#include <climits>
#include <mutex>

#include "distributed/average.h"
#include "distributed/backends.h"
#include "distributed/watchdog.h"
#include "exec/error.h"

namespace graft::distributed {
namespace {

template <typename Half>
void sum_halves(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const Half*>(in);
  auto* b = static_cast<Half*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = Half(static_cast<float>(a[i]) + static_cast<float>(b[i]));
}

// The MPI type of a reducible dtype; float16 and bfloat16 travel as 16-bit words summed by the
// user operations below.
MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::Float:
      return MPI_FLOAT;
    case DType::Double:
      return MPI_DOUBLE;
    case DType::Int8:
      return MPI_INT8_T;
    case DType::Int16:
      return MPI_INT16_T;
    case DType::Int32:
      return MPI_INT32_T;
    case DType::Int64:
      return MPI_INT64_T;
    case DType::UInt8:
      return MPI_UINT8_T;
    case DType::UInt16:
      return MPI_UINT16_T;
    case DType::UInt32:
      return MPI_UINT32_T;
    case DType::UInt64:
      return MPI_UINT64_T;
    case DType::Float16:
    case DType::BFloat16:
      return MPI_UINT16_T;
    default:
      return MPI_DATATYPE_NULL;
  }
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        throw Fail("graft.distributed: MPI_Init_thread failed");
      owns_mpi_ = true;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    check(MPI_Op_create(&sum_halves<Float16>, 1, &sum_float16_), "MPI_Op_create");
    check(MPI_Op_create(&sum_halves<BFloat16>, 1, &sum_bfloat16_), "MPI_Op_create");
  }

  // After a transport error MPI's state is unknown and MPI_Finalize may wait for the failed
  // peer forever, so a broken communicator leaves MPI as it is.
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (broken_ || finalized) return;
    MPI_Op_free(&sum_float16_);
    MPI_Op_free(&sum_bfloat16_);
    MPI_Comm_free(&comm_);
    if (owns_mpi_) MPI_Finalize();
  }

  const char* backend() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce(void* data, int64_t count, DType dtype, ReduceOp op) override {
    check_reduce_args("all_reduce", count, dtype);
    std::lock_guard lock(mutex_);
    const std::string what = describe("all_reduce", count, dtype);
    auto* bytes = static_cast<char*>(data);
    for (int64_t done = 0; done < count;) {
      const int n = static_cast<int>(std::min<int64_t>(count - done, INT_MAX));
      run(what, peers(), [&] {
        return MPI_Allreduce(MPI_IN_PLACE, bytes + done * dtype_size(dtype), n, mpi_type(dtype),
                             sum_op(dtype), comm_);
      });
      done += n;
    }
    if (op == ReduceOp::Average) divide_in_place(data, count, dtype, size_);
  }

  void broadcast(void* data, int64_t count, DType dtype, int root) override {
    check_args("broadcast", count, dtype, root);
    std::lock_guard lock(mutex_);
    const std::string what = describe("broadcast", count, dtype);
    const int64_t nbytes = count * static_cast<int64_t>(dtype_size(dtype));
    auto* bytes = static_cast<char*>(data);
    for (int64_t done = 0; done < nbytes;) {
      const int n = static_cast<int>(std::min<int64_t>(nbytes - done, INT_MAX));
      run(what, peers(root), [&] { return MPI_Bcast(bytes + done, n, MPI_BYTE, root, comm_); });
      done += n;
    }
  }

  void all_gather(const void* send, void* recv, int64_t count, DType dtype) override {
    check_args("all_gather", count, dtype);
    std::lock_guard lock(mutex_);
    const std::string what = describe("all_gather", count, dtype);
    const int n = int_count(what, count * static_cast<int64_t>(dtype_size(dtype)));
    run(what, peers(), [&] { return MPI_Allgather(send, n, MPI_BYTE, recv, n, MPI_BYTE, comm_); });
  }

  void reduce_scatter(const void* send, void* recv, int64_t count, DType dtype,
                      ReduceOp op) override {
    check_reduce_args("reduce_scatter", count, dtype);
    std::lock_guard lock(mutex_);
    const std::string what = describe("reduce_scatter", count, dtype);
    const int n = int_count(what, count);
    run(what, peers(), [&] {
      return MPI_Reduce_scatter_block(send, recv, n, mpi_type(dtype), sum_op(dtype), comm_);
    });
    if (op == ReduceOp::Average) divide_in_place(recv, count, dtype, size_);
  }

  [[noreturn]] void abort(int code) override {
    broken_ = true;
    MPI_Abort(MPI_COMM_WORLD, code);
    ::_exit(code);  // MPI_Abort does not return; this tells the compiler so
  }

  void barrier() override {
    std::lock_guard lock(mutex_);
    run(describe("barrier", -1, DType::Undefined), peers(), [&] { return MPI_Barrier(comm_); });
  }

 private:
  MPI_Op sum_op(DType dtype) const {
    if (dtype == DType::Float16) return sum_float16_;
    if (dtype == DType::BFloat16) return sum_bfloat16_;
    return MPI_SUM;
  }

  static int int_count(const std::string& what, int64_t count) {
    if (count > INT_MAX) throw InvalidArgument(what + ": more than 2^31 - 1 elements in one call");
    return static_cast<int>(count);
  }

  void check(int code, const std::string& what) {
    if (code == MPI_SUCCESS) return;
    broken_ = true;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw Fail("graft.distributed: " + what + " failed: " + std::string(text, length));
  }

  // Runs one blocking MPI call under the watchdog and checks its return code.
  template <typename Call>
  void run(const std::string& what, const std::string& peer, const Call& call) {
    watchdog_.arm(timeout(), what, peer);
    const int code = call();
    watchdog_.disarm();
    check(code, what);
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Op sum_float16_ = MPI_OP_NULL;
  MPI_Op sum_bfloat16_ = MPI_OP_NULL;
  int rank_ = 0;
  int size_ = 1;
  bool owns_mpi_ = false;
  bool broken_ = false;
  std::mutex mutex_;
  Watchdog watchdog_{
      [this](const std::string& what, const std::string& peer) { exit_on_timeout(what, peer); }};
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() {
  return std::make_unique<MpiCommunicator>();
}

bool built_with_mpi() { return true; }

}  // namespace graft::distributed
