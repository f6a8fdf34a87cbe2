// Slice: a strided window of a tensor, per the ONNX clamping rules.
#include "exec/kernel.h"
#include "exec/movement_shapes.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

// Slice-1 takes starts, ends and axes as attributes; from 10 on they are inputs 1 to 4, with
// steps.
class Slice final : public Kernel {
 public:
  explicit Slice(const KernelInfo& info) : attrs_(info.since_version() < 10) {
    if (attrs_) {
      starts_ = info.attr_ints("starts");
      ends_ = info.attr_ints("ends");
      axes_ = info.attr_ints("axes");
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> starts = starts_, ends = ends_, axes = axes_, steps;
    if (!attrs_) {
      starts = ctx.input(1).to_int_vector();
      ends = ctx.input(2).to_int_vector();
      axes = tensor_ops::optional_ints(ctx, 3);
      steps = tensor_ops::optional_ints(ctx, 4);
    }
    const StridedView view = slice_view(ctx, x.shape(), starts, ends, axes, steps);
    Tensor& y = ctx.output(0, x.dtype(), view.shape);
    tensor_ops::dispatch_copyable(x.dtype(), "Slice", [&](auto tag) {
      using T = typename decltype(tag)::type;
      tensor_ops::strided_copy_into<T>(y, x, view.offset, view.strides);
    });
  }

 private:
  bool attrs_;
  std::vector<int64_t> starts_, ends_, axes_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_slice) { reg.add({"", "Slice", 1, 1 << 30, {}, 0, make<Slice>}); }

}  // namespace graft
