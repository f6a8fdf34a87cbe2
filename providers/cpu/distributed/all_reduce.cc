// com.graft AllReduce: N inputs -> N outputs, each the sum (or average) of that input over all
// ranks of distributed::world(). Attribute reduction: "sum" (default) or "average". The inputs are
// packed so the node is one collective per dtype.
#include "distributed/communicator.h"
#include "providers/cpu/distributed/packed_collective.h"

namespace graft {
namespace {

class AllReduce final : public Kernel {
 public:
  explicit AllReduce(const KernelInfo& info)
      : op_(distributed::parse_reduce_op(info.attr_string("reduction", "sum"), info.describe())) {}

  void compute(KernelContext& ctx) override {
    distributed::Communicator& comm = distributed::world();
    const distributed::CollectiveLabel label(ctx.describe());
    run_packed_collective(ctx, scratch_, [&](void* data, int64_t count, DType dtype) {
      comm.all_reduce(data, count, dtype, op_);
    });
  }

 private:
  distributed::ReduceOp op_;
  std::vector<char> scratch_;
};

}  // namespace

GRAFT_CPU_KERNELS(distributed_all_reduce) {
  reg.add({"com.graft", "AllReduce", 1, 1 << 30, kNumberTypes, 0, make<AllReduce>});
}

}  // namespace graft
