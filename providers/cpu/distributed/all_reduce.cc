// com.graft AllReduce: N inputs -> N outputs, each the sum (or average) of that input over all
// ranks of distributed::world(). Attribute reduction: "sum" (default) or "average". The inputs are
// packed so the node is one collective per dtype. With several ranks and a core to spare
// (distributed::overlap_collectives) the collective runs on the collective stream
// (distributed/collective_stream.h): the node returns at once and the nodes after it run while
// the bytes travel; the executor waits before anything reads the outputs.
#include <omp.h>

#include <memory>

#include "distributed/collective_stream.h"
#include "distributed/communicator.h"
#include "ir/names.h"
#include "providers/cpu/distributed/packed_collective.h"

namespace graft {
namespace {

class AllReduce final : public Kernel {
 public:
  explicit AllReduce(const KernelInfo& info)
      : op_(distributed::parse_reduce_op(info.attr_string("reduction", "sum"), info.describe())) {}

  void compute(KernelContext& ctx) override {
    distributed::Communicator& comm = distributed::world();
    // An average of float or double elements is packed already divided by the ranks and then
    // summed, saving a pass over the bytes; other dtypes average in the communicator.
    const bool prescale = op_ == distributed::ReduceOp::Average && comm.size() > 1;
    auto reduce = [&comm, op = op_, prescale](const std::vector<PackedGroup>& groups,
                                              Tensor& packed) {
      for (const auto& g : groups) {
        const bool scaled = prescale && scaled_when_packed(g.dtype);
        comm.all_reduce(static_cast<char*>(packed.raw()) + g.offset, g.count(), g.dtype,
                        scaled ? distributed::ReduceOp::Sum : op);
      }
    };
    // The outputs are views of the packed buffer, which the collective reduces in place.
    Tensor packed;
    auto groups = pack_inputs(ctx, packed, prescale ? 1.0 / comm.size() : 1.0);
    if (comm.size() == 1 || !distributed::overlap_collectives(omp_get_max_threads())) {
      const distributed::CollectiveLabel label(ctx.describe());
      reduce(groups, packed);
      return;
    }
    // The stream reduces the buffer (which the task keeps alive) while the nodes after this one
    // run; the executor waits before anything reads the outputs.
    auto done = std::make_shared<std::future<void>>(distributed::submit_collective(
        [reduce, label = ctx.describe(), groups = std::move(groups), packed]() mutable {
          const distributed::CollectiveLabel scope(label);
          reduce(groups, packed);
        }));
    ctx.finish_later([done] { done->get(); });
  }

 private:
  distributed::ReduceOp op_;
};

}  // namespace

GRAFT_CPU_KERNELS(distributed_all_reduce) {
  reg.add({names::kDomain, "AllReduce", 1, 1 << 30, kNumberTypes, 0, make<AllReduce>});
}

}  // namespace graft
