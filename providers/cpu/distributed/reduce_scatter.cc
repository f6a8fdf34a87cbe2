// com.graft ReduceScatter: X of shape [d0, ...] on each rank, d0 a multiple of size -> Y of shape
// [d0 / size, ...], rank r's Y block r of X's sum (or average, attribute reduction) over ranks.
#include "distributed/collective_stream.h"
#include "distributed/communicator.h"
#include "distributed/packing.h"
#include "exec/kernel.h"
#include "ir/names.h"

namespace graft {
namespace {

class ReduceScatter final : public Kernel {
 public:
  explicit ReduceScatter(const KernelInfo& info)
      : op_(distributed::parse_reduce_op(info.attr_string("reduction", "sum"), info.describe())) {}

  void compute(KernelContext& ctx) override {
    distributed::Communicator& comm = distributed::world();
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), distributed::scattered_shape(ctx, x, comm.size()));
    distributed::run_collective_in_order(comm, ctx.describe(), [&] {
      comm.reduce_scatter(x.raw(), y.raw(), y.size(), x.dtype(), op_);
    });
  }

 private:
  distributed::ReduceOp op_;
};

}  // namespace

GRAFT_CPU_KERNELS(distributed_reduce_scatter) {
  reg.add({names::kDomain, "ReduceScatter", 1, 1 << 30, kNumberTypes, 0, make<ReduceScatter>});
}

}  // namespace graft
