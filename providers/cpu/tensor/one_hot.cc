// OneHot: indices expanded along a new axis into off/on values.
#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

class OneHot final : public Kernel {
 public:
  explicit OneHot(const KernelInfo& info) : axis_(info.attr_int("axis", -1)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& indices = ctx.input(0);
    const Tensor& depth_t = ctx.input(1);
    const Tensor& values = ctx.input(2);
    if (depth_t.size() != 1) ctx.fail("depth must hold one value");
    if (values.size() != 2) ctx.fail("values must hold [off_value, on_value]");
    const auto depth = static_cast<int64_t>(depth_t.scalar_as_double());
    if (depth < 1) ctx.fail("depth must be positive, got " + std::to_string(depth));
    const int64_t axis = tensor_ops::normalize_axis(ctx, axis_, indices.rank() + 1);
    Shape shape = indices.shape();
    shape.insert(shape.begin() + axis, depth);
    Tensor& y = ctx.output(0, values.dtype(), shape);
    const std::vector<int64_t> idx = indices.to_int_vector();
    const int64_t outer = tensor_ops::product(indices.shape(), 0, static_cast<size_t>(axis));
    const int64_t inner = indices.size() / std::max<int64_t>(outer, 1);
    tensor_ops::dispatch_copyable(values.dtype(), "OneHot", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T off = values.data<T>()[0], on = values.data<T>()[1];
      T* out = y.data<T>();
      std::fill_n(out, y.size(), off);
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
          int64_t v = idx[static_cast<size_t>(o * inner + i)];
          if (v < 0) v += depth;
          if (v >= 0 && v < depth) out[(o * depth + v) * inner + i] = on;
        }
      }
    });
  }

 private:
  int64_t axis_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_one_hot) { reg.add({"", "OneHot", 9, 1 << 30, {}, 0, make<OneHot>}); }

}  // namespace graft
