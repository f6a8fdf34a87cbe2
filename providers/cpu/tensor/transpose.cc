// Transpose: permutes the axes (reversed when perm is absent).
#include "exec/kernel.h"
#include "exec/movement_shapes.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

class Transpose final : public Kernel {
 public:
  explicit Transpose(const KernelInfo& info) : perm_(info.attr_ints("perm")) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const StridedView view = transpose_view(ctx, x.shape(), perm_);
    Tensor& y = ctx.output(0, x.dtype(), view.shape);
    tensor_ops::dispatch_copyable(x.dtype(), "Transpose", [&](auto tag) {
      using T = typename decltype(tag)::type;
      tensor_ops::strided_copy_into<T>(y, x, 0, view.strides);
    });
  }

 private:
  std::vector<int64_t> perm_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_transpose) {
  reg.add({"", "Transpose", 1, 1 << 30, {}, 0, make<Transpose>});
}

}  // namespace graft
