// com.graft Broadcast: N inputs -> N outputs, each rank's outputs a copy of rank `root`'s inputs
// (attribute root, default 0). Every rank passes inputs of the same shapes and dtypes; the inputs
// are packed so the node is one collective per dtype.
#include "distributed/collective_stream.h"
#include "distributed/communicator.h"
#include "ir/names.h"
#include "providers/cpu/distributed/packed_collective.h"

namespace graft {
namespace {

class Broadcast final : public Kernel {
 public:
  explicit Broadcast(const KernelInfo& info) : root_(info.attr_int("root", 0)) {
    if (root_ < 0) info.fail("root " + std::to_string(root_) + " is negative");
  }

  void compute(KernelContext& ctx) override {
    distributed::Communicator& comm = distributed::world();
    if (root_ >= comm.size()) {
      ctx.fail("root " + std::to_string(root_) + " is not a rank of " +
               std::to_string(comm.size()));
    }
    distributed::run_collective_in_order(comm, ctx.describe(), [&] {
      run_packed_collective(ctx, [&](void* data, int64_t count, DType dtype) {
        comm.broadcast(data, count, dtype, static_cast<int>(root_));
      });
    });
  }

 private:
  int64_t root_;
};

}  // namespace

GRAFT_CPU_KERNELS(distributed_broadcast) {
  reg.add({names::kDomain, "Broadcast", 1, 1 << 30, {}, 0, make<Broadcast>});
}

}  // namespace graft
