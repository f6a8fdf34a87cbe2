// DynamicQuantizeLinear: uint8 quantization with a scale and zero point computed from the range
// of the data (widened to include 0).
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "exec/kernel.h"
#include "providers/cpu/quantization/quant_util.h"

namespace graft {
namespace {

class DynamicQuantizeLinear : public Kernel {
 public:
  explicit DynamicQuantizeLinear(const KernelInfo& info) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::Float)
      ctx.fail(std::string("x must be float, got ") + dtype_name(x.dtype()));
    const float* src = x.data<float>();
    const int64_t count = x.size();
    float lo = 0.0f, hi = 0.0f;
    // simd: an OpenMP reduction may reorder min and max, so the loop vectorizes without
    // -ffast-math (the order does not change the result).
#pragma omp parallel for simd reduction(min : lo) reduction(max : hi) if (count > (1 << 16))
    for (int64_t i = 0; i < count; ++i) {
      lo = std::min(lo, src[i]);
      hi = std::max(hi, src[i]);
    }
    constexpr float kQMax = 255.0f;
    const float scale = (hi == lo ? 1.0f : hi - lo) / kQMax;
    const float zero = std::nearbyint(std::clamp(0.0f - lo / scale, 0.0f, kQMax));

    Tensor& y = ctx.output(0, DType::UInt8, x.shape());
    uint8_t* dst = y.data<uint8_t>();
#pragma omp parallel for simd if (count > (1 << 16))
    for (int64_t i = 0; i < count; ++i) {
      dst[i] = cpu::saturate_round<uint8_t>(src[i] / scale, zero, 0.0f, kQMax);
    }
    ctx.output(1, DType::Float, {}).data<float>()[0] = scale;
    ctx.output(2, DType::UInt8, {}).data<uint8_t>()[0] = static_cast<uint8_t>(zero);
  }
};

}  // namespace

GRAFT_CPU_KERNELS(dynamic_quantize_linear) {
  reg.add(
      {"", "DynamicQuantizeLinear", 11, 1 << 30, {DType::Float}, 0, make<DynamicQuantizeLinear>});
}

}  // namespace graft
