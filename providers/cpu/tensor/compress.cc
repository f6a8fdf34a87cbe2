// Compress: keeps the slices along an axis (or the elements of the flattened input) whose
// condition is true.
#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

class Compress final : public Kernel {
 public:
  explicit Compress(const KernelInfo& info)
      : has_axis_(info.has_attr("axis")), axis_(info.attr_int("axis", 0)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& input = ctx.input(0);
    const Tensor& condition = ctx.input(1);
    if (condition.rank() != 1) ctx.fail("condition must be 1-D");
    const Tensor x = has_axis_ ? input : input.reshaped({input.size()});
    if (x.rank() == 0) ctx.fail("cannot compress a scalar along an axis");
    const int64_t axis = has_axis_ ? tensor_ops::normalize_axis(ctx, axis_, x.rank()) : 0;
    const int64_t dim = x.dim(axis);
    const std::vector<int64_t> cond = condition.to_int_vector();
    std::vector<int64_t> kept;
    for (size_t i = 0; i < cond.size(); ++i) {
      if (cond[i] == 0) continue;
      if (static_cast<int64_t>(i) >= dim) {
        ctx.fail("condition has a true entry beyond the axis dim " + std::to_string(dim));
      }
      kept.push_back(static_cast<int64_t>(i));
    }
    Shape shape = x.shape();
    shape[static_cast<size_t>(axis)] = static_cast<int64_t>(kept.size());
    Tensor& y = ctx.output(0, x.dtype(), shape);
    const int64_t outer = tensor_ops::product(x.shape(), 0, static_cast<size_t>(axis));
    const int64_t inner =
        tensor_ops::product(x.shape(), static_cast<size_t>(axis) + 1, x.shape().size());
    const auto n = static_cast<int64_t>(kept.size());
    tensor_ops::dispatch_copyable(x.dtype(), "Compress", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t j = 0; j < n; ++j) {
          const T* in = src + (o * dim + kept[static_cast<size_t>(j)]) * inner;
          std::copy(in, in + inner, dst + (o * n + j) * inner);
        }
      }
    });
  }

 private:
  bool has_axis_;
  int64_t axis_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_compress) { reg.add({"", "Compress", 9, 1 << 30, {}, 0, make<Compress>}); }

}  // namespace graft
