// Concat: joins tensors along an axis.
#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

// Concat-1 defaults axis to 1; from 4 on the attribute is required.
class Concat final : public Kernel {
 public:
  explicit Concat(const KernelInfo& info) {
    if (info.since_version() >= 4 && !info.has_attr("axis")) {
      info.fail("attribute 'axis' is required");
    }
    axis_ = info.attr_int("axis", 1);
  }

  void compute(KernelContext& ctx) override {
    std::vector<Tensor> parts;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      if (ctx.has_input(i)) parts.push_back(ctx.input(i));
    }
    if (parts.empty()) ctx.fail("no inputs");
    if (parts[0].rank() == 0) ctx.fail("cannot concatenate scalars");
    const int64_t axis = tensor_ops::normalize_axis(ctx, axis_, parts[0].rank());
    ctx.set_output(0, tensor_ops::concat_tensors(ctx, parts, axis));
  }

 private:
  int64_t axis_ = 1;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_concat) { reg.add({"", "Concat", 1, 1 << 30, {}, 0, make<Concat>}); }

}  // namespace graft
