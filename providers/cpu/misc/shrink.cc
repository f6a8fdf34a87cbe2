// Shrink: x + bias below -lambd, x - bias above lambd, 0 in between.
#include <type_traits>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

class Shrink final : public Kernel {
 public:
  explicit Shrink(const KernelInfo& info)
      : bias_(info.attr_float("bias", 0.0f)), lambd_(info.attr_float("lambd", 0.5f)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    dispatch_number(x.dtype(), "Shrink", [&](auto tag) {
      using T = typename decltype(tag)::type;
      // Integers compare and shift in double, as NumPy promotes them against the float
      // attributes, and wrap back into T.
      using A = std::conditional_t<std::is_same_v<T, float> || std::is_same_v<T, Float16> ||
                                       std::is_same_v<T, BFloat16>,
                                   float, double>;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
      const A bias = static_cast<A>(bias_), lambd = static_cast<A>(lambd_);
      const int64_t n = x.size();
#pragma omp parallel for if (n > tensor_ops::kParallelElements)
      for (int64_t i = 0; i < n; ++i) {
        const A v = static_cast<A>(src[i]);
        A r = 0;
        if (v < -lambd) {
          r = v + bias;
        } else if (v > lambd) {
          r = v - bias;
        }
        if constexpr (std::is_integral_v<T>) {
          dst[i] = r < 0 ? static_cast<T>(static_cast<int64_t>(r))
                         : static_cast<T>(static_cast<uint64_t>(r));
        } else {
          dst[i] = T(r);
        }
      }
    });
  }

 private:
  float bias_;
  float lambd_;
};

}  // namespace

GRAFT_CPU_KERNELS(misc_shrink) {
  const std::vector<DType> types = {DType::Float,  DType::Double, DType::Float16, DType::Int8,
                                    DType::Int16,  DType::Int32,  DType::Int64,   DType::UInt8,
                                    DType::UInt16, DType::UInt32, DType::UInt64};
  reg.add({"", "Shrink", 9, 1 << 30, types, 0, make<Shrink>});
}

}  // namespace graft
