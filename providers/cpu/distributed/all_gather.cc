// com.graft AllGather: X of shape [d0, ...] on each rank -> Y of shape [size * d0, ...], rank r's
// X at rows r * d0 .. (r + 1) * d0. Every rank passes the same shape.
#include "distributed/collective_stream.h"
#include "distributed/communicator.h"
#include "distributed/packing.h"
#include "exec/kernel.h"
#include "ir/names.h"

namespace graft {
namespace {

class AllGather final : public Kernel {
 public:
  explicit AllGather(const KernelInfo&) {}

  void compute(KernelContext& ctx) override {
    distributed::Communicator& comm = distributed::world();
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), distributed::gathered_shape(ctx, x, comm.size()));
    distributed::run_collective_in_order(
        comm, ctx.describe(), [&] { comm.all_gather(x.raw(), y.raw(), x.size(), x.dtype()); });
  }
};

}  // namespace

GRAFT_CPU_KERNELS(distributed_all_gather) {
  reg.add({names::kDomain, "AllGather", 1, 1 << 30, {}, 0, make<AllGather>});
}

}  // namespace graft
