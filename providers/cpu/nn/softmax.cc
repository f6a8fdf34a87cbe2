// Softmax, LogSoftmax and Hardmax. Before opset 13 the input is flattened to 2-D at `axis`
// (default 1) and the op runs along the second dim; from 13 it runs along the single `axis`
// (default -1). Both are an [outer, n, inner] walk (inner = 1 for the flattened form).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "exec/kernel.h"
#include "exec/reduce_shapes.h"
#include "providers/cpu/linalg/gemm_util.h"
#include "providers/cpu/math/fast_math.h"

namespace graft {
namespace {

enum class SoftmaxKind { Softmax, LogSoftmax, Hardmax };

template <typename T>
void run_softmax(SoftmaxKind kind, const T* x, T* y, int64_t outer, int64_t n, int64_t inner) {
  using Acc = cpu::AccumulateType<T>;
#pragma omp parallel for if (outer * n * inner > (1 << 14) && outer > 1 && !omp_in_parallel())
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* src = x + o * n * inner + i;
      T* dst = y + o * n * inner + i;
      if constexpr (std::is_same_v<T, float>) {
        if (kind == SoftmaxKind::Softmax && inner == 1) {
          // Contiguous float rows: a vector max, one pass of the vectorizable exp summed in
          // vector lanes, then a scale. A NaN never wins the max; it reaches its own output.
          float max = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : max)
          for (int64_t j = 0; j < n; ++j) max = std::max(max, src[j]);
          if (std::isfinite(max)) {
            fast_math::softmax_from_max(src, dst, n, max);
            continue;
          }
        }
      }
      Acc max = -std::numeric_limits<Acc>::infinity();
      int64_t arg = 0;
      for (int64_t j = 0; j < n; ++j) {
        const Acc v = static_cast<Acc>(src[j * inner]);
        if (v > max) {
          max = v;
          arg = j;
        }
      }
      if (kind == SoftmaxKind::Hardmax) {
        for (int64_t j = 0; j < n; ++j) dst[j * inner] = static_cast<T>(j == arg ? 1.0f : 0.0f);
        continue;
      }
      if (std::isinf(max)) max = 0;  // all -inf (or +inf present): keep exp() finite where possible
      Acc sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += std::exp(static_cast<Acc>(src[j * inner]) - max);
      if (kind == SoftmaxKind::Softmax) {
        const Acc scale = Acc(1) / sum;
        for (int64_t j = 0; j < n; ++j)
          dst[j * inner] = static_cast<T>(std::exp(static_cast<Acc>(src[j * inner]) - max) * scale);
      } else {
        const Acc shift = max + std::log(sum);
        for (int64_t j = 0; j < n; ++j)
          dst[j * inner] = static_cast<T>(static_cast<Acc>(src[j * inner]) - shift);
      }
    }
  }
}

class Softmax : public Kernel {
 public:
  Softmax(const KernelInfo& info, SoftmaxKind kind)
      : kind_(kind),
        flatten_(info.since_version() < 13),
        axis_(info.attr_int("axis", info.since_version() < 13 ? 1 : -1)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t rank = x.rank();
    // A scalar behaves as a single element along axis 0.
    const int64_t axis = axis_ < 0 ? axis_ + std::max<int64_t>(rank, 1) : axis_;
    if (axis < 0 || axis >= std::max<int64_t>(rank, 1) + (flatten_ ? 1 : 0))
      ctx.fail("axis " + std::to_string(axis_) + " is out of range for rank " +
               std::to_string(rank));
    const AxisSplit split = split_at_axis(x.shape(), axis, flatten_);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    if (y.size() == 0) return;
    dispatch_float(x.dtype(), "Softmax", [&](auto tag) {
      using T = typename decltype(tag)::type;
      run_softmax<T>(kind_, x.data<T>(), y.data<T>(), split.outer, split.n, split.inner);
    });
  }

 private:
  SoftmaxKind kind_;
  bool flatten_;
  int64_t axis_;
};

KernelFactory softmax_factory(SoftmaxKind kind) {
  return [kind](const KernelInfo& info) { return std::make_unique<Softmax>(info, kind); };
}

}  // namespace

GRAFT_CPU_KERNELS(softmax) {
  reg.add({"", "Softmax", 1, 1 << 30, kFloatTypes, 0, softmax_factory(SoftmaxKind::Softmax)});
  reg.add({"", "LogSoftmax", 1, 1 << 30, kFloatTypes, 0, softmax_factory(SoftmaxKind::LogSoftmax)});
  reg.add({"", "Hardmax", 1, 1 << 30, kFloatTypes, 0, softmax_factory(SoftmaxKind::Hardmax)});
}

}  // namespace graft
