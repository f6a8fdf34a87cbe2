// Split: cuts a tensor into several outputs along an axis.
#include <numeric>

#include "exec/kernel.h"
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
    if (sizes.empty()) {
      const int64_t n = num_outputs_;
      if (n <= 0) ctx.fail("no outputs");
      if (dim % n == 0) {
        sizes.assign(static_cast<size_t>(n), dim / n);
      } else {
        if (!uneven_) {
          ctx.fail("axis dim " + std::to_string(dim) + " does not split evenly into " +
                   std::to_string(n) + " outputs");
        }
        const int64_t chunk = dim / n + 1;
        sizes.assign(static_cast<size_t>(n), chunk);
        sizes.back() = dim - chunk * (n - 1);
        if (sizes.back() < 0) {
          ctx.fail("axis dim " + std::to_string(dim) + " is too small for " + std::to_string(n) +
                   " outputs");
        }
      }
    }
    if (static_cast<int64_t>(sizes.size()) != num_outputs_) {
      ctx.fail("split has " + std::to_string(sizes.size()) + " entries for " +
               std::to_string(num_outputs_) + " outputs");
    }
    for (int64_t s : sizes) {
      if (s < 0) ctx.fail("split sizes must be non-negative");
    }
    if (std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) != dim) {
      ctx.fail("split sizes " + shape_to_string(sizes) + " do not add up to the axis dim " +
               std::to_string(dim));
    }
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
