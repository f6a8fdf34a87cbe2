// com.graft AllReduce, Broadcast, AllGather and ReduceScatter on device tensors, over the NCCL
// communicator of the session's device (semantics as the CPU kernels in providers/cpu/distributed).
// AllReduce and Broadcast pack their inputs into one device buffer with one batched-copy launch
// (distributed::pack_layout, pack_into), run one NCCL collective per dtype on it in place, and hand
// out views of it as their outputs.
//
// The collectives are enqueued on the device's collective stream after the compute stream's work so
// far, and the node returns at once: the compute stream waits for them (ctx.finish_later) only
// before a node reads the outputs, so the gradient buckets of data-parallel training travel while
// backward goes on. The communicator watches what it enqueued and ends the process when a
// collective fails or times out (distributed/communicator.h).
#include <functional>
#include <memory>
#include <vector>

#include "distributed/packing.h"
#include "ir/names.h"
#include "providers/cuda/batched_copy.h"
#include "providers/cuda/device.h"
#include "providers/cuda/kernels.h"

namespace graft::cuda {
namespace {

using distributed::Communicator;
using distributed::PackedGroup;

// Packs the inputs into `packed` on the compute stream and sets the outputs to views of it.
std::vector<PackedGroup> pack_inputs(KernelContext& ctx, Streams& streams, Tensor& packed) {
  size_t total = 0;
  std::vector<PackedGroup> groups = distributed::pack_layout(ctx, total);
  packed = Tensor::empty(DType::UInt8, {static_cast<int64_t>(total)}, streams.memory());
  std::vector<CopySegment> segments;
  distributed::pack_into(ctx, groups, packed, [&](const Tensor& x, char* to) {
    segments.push_back({x.raw(), to, x.nbytes()});
  });
  check(batched_copy(segments.data(), segments.size(), streams.compute()),
        ctx.describe() + ": packing the inputs");
  return groups;
}

// Runs `enqueue` (the node's collectives) on the collective stream after the work of the compute
// stream so far; before a node reads the outputs, the compute stream waits for it. `keep` holds the
// device buffers the collectives read or write until then: released earlier, their blocks would go
// back to the compute stream's pool while NCCL still used them.
void on_collective_stream(KernelContext& ctx, Streams& streams, std::vector<Tensor> keep,
                          const std::function<void(Communicator&)>& enqueue) {
  Device& device = streams.device();
  Communicator& comm = device.communicator();
  streams.order(streams.compute(), device.collective_stream());
  {
    const distributed::CollectiveLabel label(ctx.describe());
    enqueue(comm);
  }
  auto done = std::make_shared<Event>();
  done->record(device.collective_stream());
  ctx.finish_later(
      [done, keep = std::move(keep), compute = streams.compute()] { done->wait_on(compute); });
}

class AllReduce final : public Kernel {
 public:
  explicit AllReduce(const KernelInfo& info)
      : streams_(streams_of(info)),
        op_(distributed::parse_reduce_op(info.attr_string("reduction", "sum"), info.describe())) {}
  void compute(KernelContext& ctx) override {
    streams_.device().make_current();
    Tensor packed;
    const auto groups = pack_inputs(ctx, streams_, packed);
    char* base = static_cast<char*>(packed.raw());
    on_collective_stream(ctx, streams_, {packed}, [&](Communicator& comm) {
      for (const auto& g : groups)
        comm.enqueue_all_reduce(base + g.offset, g.count(), g.dtype, op_);
    });
  }

 private:
  Streams& streams_;
  distributed::ReduceOp op_;
};

class Broadcast final : public Kernel {
 public:
  explicit Broadcast(const KernelInfo& info)
      : streams_(streams_of(info)), root_(info.attr_int("root", 0)) {
    if (root_ < 0) info.fail("root " + std::to_string(root_) + " is negative");
  }
  void compute(KernelContext& ctx) override {
    streams_.device().make_current();
    const int ranks = streams_.device().communicator().size();
    if (root_ >= ranks)
      ctx.fail("root " + std::to_string(root_) + " is not a rank of " + std::to_string(ranks));
    Tensor packed;
    const auto groups = pack_inputs(ctx, streams_, packed);
    char* base = static_cast<char*>(packed.raw());
    on_collective_stream(ctx, streams_, {packed}, [&](Communicator& comm) {
      for (const auto& g : groups)
        comm.enqueue_broadcast(base + g.offset, g.count(), g.dtype, static_cast<int>(root_));
    });
  }

 private:
  Streams& streams_;
  int64_t root_;
};

class AllGather final : public Kernel {
 public:
  explicit AllGather(const KernelInfo& info) : streams_(streams_of(info)) {}
  void compute(KernelContext& ctx) override {
    streams_.device().make_current();
    const Tensor& x = ctx.input(0);
    const int ranks = streams_.device().communicator().size();
    Tensor& y = ctx.output(0, x.dtype(), distributed::gathered_shape(ctx, x, ranks));
    on_collective_stream(ctx, streams_, {x, y}, [&](Communicator& comm) {
      comm.enqueue_all_gather(x.raw(), y.raw(), x.size(), x.dtype());
    });
  }

 private:
  Streams& streams_;
};

class ReduceScatter final : public Kernel {
 public:
  explicit ReduceScatter(const KernelInfo& info)
      : streams_(streams_of(info)),
        op_(distributed::parse_reduce_op(info.attr_string("reduction", "sum"), info.describe())) {}
  void compute(KernelContext& ctx) override {
    streams_.device().make_current();
    const Tensor& x = ctx.input(0);
    const int ranks = streams_.device().communicator().size();
    Tensor& y = ctx.output(0, x.dtype(), distributed::scattered_shape(ctx, x, ranks));
    on_collective_stream(ctx, streams_, {x, y}, [&](Communicator& comm) {
      comm.enqueue_reduce_scatter(x.raw(), y.raw(), y.size(), x.dtype(), op_);
    });
  }

 private:
  Streams& streams_;
  distributed::ReduceOp op_;
};

}  // namespace

void register_collective_kernels(KernelRegistry& reg) {
  reg.add({names::kDomain, "AllReduce", 1, 1 << 30, kNumberTypes, 0, make<AllReduce>});
  reg.add({names::kDomain, "Broadcast", 1, 1 << 30, {}, 0, make<Broadcast>});
  reg.add({names::kDomain, "AllGather", 1, 1 << 30, {}, 0, make<AllGather>});
  reg.add({names::kDomain, "ReduceScatter", 1, 1 << 30, kNumberTypes, 0, make<ReduceScatter>});
}

}  // namespace graft::cuda
