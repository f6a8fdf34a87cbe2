// com.graft.SoftmaxGrad: dX = Y * (dY - sum(dY * Y, axis)) in one pass per row, the fused form
// of the gradient graft emits for Softmax (its function body is the unfused standard-op form).
#include "exec/kernel.h"
#include "exec/reduce_shapes.h"
#include "ir/names.h"

namespace graft {
namespace {

class SoftmaxGrad : public Kernel {
 public:
  explicit SoftmaxGrad(const KernelInfo& info) : axis_(info.attr_int("axis", -1)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& dy = ctx.input(0);
    const Tensor& y = ctx.input(1);
    if (dy.shape() != y.shape()) {
      ctx.fail("dY " + shape_to_string(dy.shape()) + " and Y " + shape_to_string(y.shape()) +
               " differ");
    }
    if (dy.dtype() != y.dtype()) ctx.fail("dY and Y differ in element type");
    const int64_t rank = y.rank();
    int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    if (axis < 0 || axis >= rank) ctx.fail("axis " + std::to_string(axis_) + " is out of range");
    const AxisSplit split = split_at_axis(y.shape(), axis, false);
    const int64_t outer = split.outer, n = split.n, inner = split.inner;
    Tensor& dx = ctx.output(0, y.dtype(), y.shape());
    dispatch_float(y.dtype(), "SoftmaxGrad", [&](auto tag) {
      using T = typename decltype(tag)::type;
      using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
      const T* g = dy.data<T>();
      const T* p = y.data<T>();
      T* out = dx.data<T>();
#pragma omp parallel for if (outer * n * inner > (1 << 15))
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t base = o * n * inner + i;
          Acc dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t j = 0; j < n; ++j)
            dot += static_cast<Acc>(g[base + j * inner]) * static_cast<Acc>(p[base + j * inner]);
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) {
            const int64_t k = base + j * inner;
            out[k] = static_cast<T>(static_cast<Acc>(p[k]) * (static_cast<Acc>(g[k]) - dot));
          }
        }
      }
    });
  }

 private:
  int64_t axis_;
};

}  // namespace

GRAFT_CPU_KERNELS(softmax_grad) {
  reg.add({names::kDomain, "SoftmaxGrad", 1, 1 << 30, kFloatTypes, 0, make<SoftmaxGrad>});
}

}  // namespace graft
