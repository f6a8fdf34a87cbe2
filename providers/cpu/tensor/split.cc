// Split: cuts a tensor into several outputs along an axis.
#include "exec/kernel.h"
#include "exec/movement_shapes.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

// The split sizes come from input 1 in opsets 1 and 13+, from the attribute in 1, 2 and 11.
// Without them the axis is cut into equal parts; Split-18's num_outputs allows a smaller last
// part.
class Split final : public Kernel {
 public:
  explicit Split(const KernelInfo& info)
      : version_(info.since_version()),
        axis_(info.attr_int("axis", 0)),
        split_attr_(info.attr_ints("split")),
        num_outputs_(info.num_outputs()) {
    if (version_ >= 18 && info.has_attr("num_outputs")) {
      if (info.attr_int("num_outputs", 0) != num_outputs_) {
        info.fail("num_outputs does not match the node's " + std::to_string(num_outputs_) +
                  " outputs");
      }
      uneven_ = true;
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() == 0) ctx.fail("cannot split a scalar");
    const int64_t axis = tensor_ops::normalize_axis(ctx, axis_, x.rank());
    const int64_t dim = x.dim(axis);
    std::vector<int64_t> sizes;
    const bool split_input = version_ == 1 || version_ >= 13;
    if (split_input && ctx.num_inputs() > 1 && ctx.has_input(1)) {
      sizes = ctx.input(1).to_int_vector();
    } else if (version_ < 13) {
      sizes = split_attr_;
    }
    sizes = split_sizes(ctx, dim, std::move(sizes), num_outputs_, uneven_);
    std::vector<Tensor> pieces = tensor_ops::split_tensor(x, axis, sizes);
    for (int i = 0; i < num_outputs_; ++i) {
      if (ctx.has_output(i)) ctx.set_output(i, std::move(pieces[static_cast<size_t>(i)]));
    }
  }

 private:
  int version_;
  int64_t axis_;
  std::vector<int64_t> split_attr_;
  int num_outputs_;
  bool uneven_ = false;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_split) { reg.add({"", "Split", 1, 1 << 30, {}, 0, make<Split>}); }

}  // namespace graft
