// The communicator of a process that runs alone: rank 0 of 1.
#include <unistd.h>

#include <cstring>

#include "distributed/backends.h"
#include "exec/error.h"

namespace graft::distributed {
namespace {

class SingleProcessCommunicator final : public Communicator {
 public:
  const char* backend() const override { return "single"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }

  void all_reduce(void*, int64_t count, DType dtype, ReduceOp) override {
    check_reduce_args("all_reduce", count, dtype);
  }
  void broadcast(void*, int64_t count, DType dtype, int root) override {
    check_args("broadcast", count, dtype, root);
  }
  void all_gather(const void* send, void* recv, int64_t count, DType dtype) override {
    check_args("all_gather", count, dtype);
    copy(send, recv, count, dtype);
  }
  void reduce_scatter(const void* send, void* recv, int64_t count, DType dtype, ReduceOp) override {
    check_reduce_args("reduce_scatter", count, dtype);
    copy(send, recv, count, dtype);
  }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { ::_exit(code); }

 private:
  static void copy(const void* send, void* recv, int64_t count, DType dtype) {
    if (count > 0 && send != recv)
      std::memcpy(recv, send, static_cast<size_t>(count) * dtype_size(dtype));
  }
};

}  // namespace

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

}  // namespace graft::distributed
