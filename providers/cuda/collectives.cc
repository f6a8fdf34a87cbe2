// com.graft AllReduce, Broadcast, AllGather and ReduceScatter on device tensors, over the NCCL
// communicator of the CUDA device (semantics as the CPU kernels in providers/cpu/distributed).
// AllReduce and Broadcast pack their inputs into one device buffer with one batched-copy launch
// (distributed::pack_layout, pack_into), run one NCCL collective per dtype on it in place, and hand
// out views of it as their outputs.
#include <vector>

#include "distributed/packing.h"
#include "ir/names.h"
#include "providers/cuda/batched_copy.h"
#include "providers/cuda/device.h"
#include "providers/cuda/kernels.h"

namespace graft::cuda {
namespace {

using distributed::PackedGroup;

// Packs the inputs into `packed` on the device and sets the outputs to views of it; the packing
// is complete when this returns.
std::vector<PackedGroup> pack_inputs(KernelContext& ctx, Tensor& packed) {
  size_t total = 0;
  std::vector<PackedGroup> groups = distributed::pack_layout(ctx, total);
  Device& device = Device::get();
  packed = Tensor::empty(DType::UInt8, {static_cast<int64_t>(total)}, device.allocator());
  std::vector<CopySegment> segments;
  distributed::pack_into(ctx, groups, packed, [&](const Tensor& x, char* to) {
    segments.push_back({x.raw(), to, x.nbytes()});
  });
  check(batched_copy(segments.data(), segments.size(), device.stream()),
        ctx.describe() + ": packing the inputs");
  // NCCL reads the buffer on its own stream.
  device.synchronize();
  return groups;
}

class AllReduce final : public Kernel {
 public:
  explicit AllReduce(const KernelInfo& info)
      : op_(distributed::parse_reduce_op(info.attr_string("reduction", "sum"), info.describe())) {}
  void compute(KernelContext& ctx) override {
    distributed::Communicator& comm = Device::get().communicator();
    Tensor packed;
    const auto groups = pack_inputs(ctx, packed);
    const distributed::CollectiveLabel label(ctx.describe());
    for (const auto& g : groups)
      comm.all_reduce(static_cast<char*>(packed.raw()) + g.offset, g.count(), g.dtype, op_);
  }

 private:
  distributed::ReduceOp op_;
};

class Broadcast final : public Kernel {
 public:
  explicit Broadcast(const KernelInfo& info) : root_(info.attr_int("root", 0)) {
    if (root_ < 0) info.fail("root " + std::to_string(root_) + " is negative");
  }
  void compute(KernelContext& ctx) override {
    distributed::Communicator& comm = Device::get().communicator();
    if (root_ >= comm.size()) {
      ctx.fail("root " + std::to_string(root_) + " is not a rank of " +
               std::to_string(comm.size()));
    }
    Tensor packed;
    const auto groups = pack_inputs(ctx, packed);
    const distributed::CollectiveLabel label(ctx.describe());
    for (const auto& g : groups) {
      comm.broadcast(static_cast<char*>(packed.raw()) + g.offset, g.count(), g.dtype,
                     static_cast<int>(root_));
    }
  }

 private:
  int64_t root_;
};

class AllGather final : public Kernel {
 public:
  explicit AllGather(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    Device& device = Device::get();
    distributed::Communicator& comm = device.communicator();
    const Tensor& x = ctx.input(0);
    Tensor y = Tensor::empty(x.dtype(), distributed::gathered_shape(ctx, x, comm.size()),
                             device.allocator());
    device.synchronize();
    const distributed::CollectiveLabel label(ctx.describe());
    comm.all_gather(x.raw(), y.raw(), x.size(), x.dtype());
    ctx.set_output(0, Value(std::move(y)));
  }
};

class ReduceScatter final : public Kernel {
 public:
  explicit ReduceScatter(const KernelInfo& info)
      : op_(distributed::parse_reduce_op(info.attr_string("reduction", "sum"), info.describe())) {}
  void compute(KernelContext& ctx) override {
    Device& device = Device::get();
    distributed::Communicator& comm = device.communicator();
    const Tensor& x = ctx.input(0);
    Tensor y = Tensor::empty(x.dtype(), distributed::scattered_shape(ctx, x, comm.size()),
                             device.allocator());
    device.synchronize();
    const distributed::CollectiveLabel label(ctx.describe());
    comm.reduce_scatter(x.raw(), y.raw(), y.size(), x.dtype(), op_);
    ctx.set_output(0, Value(std::move(y)));
  }

 private:
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
