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
#include "providers/cpu/distributed/packed_collective.h"

namespace graft {
namespace {

class AllReduce final : public Kernel {
 public:
  explicit AllReduce(const KernelInfo& info)
      : op_(distributed::parse_reduce_op(info.attr_string("reduction", "sum"), info.describe())) {}

  void compute(KernelContext& ctx) override {
    distributed::Communicator& comm = distributed::world();
    auto reduce = [&comm, op = op_](const std::vector<PackedGroup>& groups,
                                    std::vector<char>& data) {
      for (const auto& g : groups) {
        comm.all_reduce(data.data() + g.offset, static_cast<int64_t>(g.bytes / dtype_size(g.dtype)),
                        g.dtype, op);
      }
    };
    std::vector<Tensor> outputs;
    auto groups = pack_inputs(ctx, scratch_, outputs);
    if (comm.size() == 1 || !distributed::overlap_collectives(omp_get_max_threads())) {
      const distributed::CollectiveLabel label(ctx.describe());
      reduce(groups, scratch_);
      unpack_outputs(groups, scratch_, outputs);
      return;
    }
    // The stream reduces scratch_ and fills the outputs; the next run of this node starts only
    // after the executor has waited for this one.
    auto done = std::make_shared<std::future<void>>(distributed::submit_collective(
        [this, reduce, label = ctx.describe(), groups = std::move(groups),
         outputs = std::move(outputs)]() mutable {
          const distributed::CollectiveLabel scope(label);
          reduce(groups, scratch_);
          unpack_outputs(groups, scratch_, outputs);
        }));
    ctx.finish_later([done] { done->get(); });
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
