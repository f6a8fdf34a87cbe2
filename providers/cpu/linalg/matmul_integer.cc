// MatMulInteger: int32 product of 8-bit matrices after subtracting zero points (a scalar, or per
// row of A / per column of B).
#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"

namespace graft {
namespace {

// Widens a uint8/int8 tensor to int32.
std::vector<int32_t> widen(const Tensor& t, const KernelContext& ctx, const char* name) {
  std::vector<int32_t> out(static_cast<size_t>(t.size()));
  if (t.dtype() == DType::UInt8) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = t.data<uint8_t>()[i];
  } else if (t.dtype() == DType::Int8) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = t.data<int8_t>()[i];
  } else {
    ctx.fail(std::string(name) + " must be int8 or uint8, got " + dtype_name(t.dtype()));
  }
  return out;
}

class MatMulInteger : public Kernel {
 public:
  explicit MatMulInteger(const KernelInfo& info) {}

  void compute(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const MatMulShape plan = plan_matmul(ctx, a.shape(), b.shape());
    const Shape& batch = plan.batch;
    const int64_t m = plan.m, k = plan.k, n = plan.n;
    const std::vector<int64_t>&a_index = plan.a_index, &b_index = plan.b_index;

    std::vector<int32_t> aw = widen(a, ctx, "A"), bw = widen(b, ctx, "B");
    if (ctx.has_input(2)) {
      const Tensor& zp = ctx.input(2);
      if (zp.dtype() != a.dtype()) ctx.fail("a_zero_point must have A's dtype");
      const std::vector<int32_t> z = widen(zp, ctx, "a_zero_point");
      if (z.size() != 1 && static_cast<int64_t>(z.size()) != m)
        ctx.fail("a_zero_point must be a scalar or have M elements, got " +
                 shape_to_string(zp.shape()));
      for (size_t i = 0; i < aw.size(); ++i)
        aw[i] -= z.size() == 1 ? z[0] : z[(i / static_cast<size_t>(k)) % static_cast<size_t>(m)];
    }
    if (ctx.has_input(3)) {
      const Tensor& zp = ctx.input(3);
      if (zp.dtype() != b.dtype()) ctx.fail("b_zero_point must have B's dtype");
      const std::vector<int32_t> z = widen(zp, ctx, "b_zero_point");
      if (z.size() != 1 && static_cast<int64_t>(z.size()) != n)
        ctx.fail("b_zero_point must be a scalar or have N elements, got " +
                 shape_to_string(zp.shape()));
      for (size_t i = 0; i < bw.size(); ++i)
        bw[i] -= z.size() == 1 ? z[0] : z[i % static_cast<size_t>(n)];
    }

    Tensor& y = ctx.output(0, DType::Int32, plan.out);
    const int64_t batch_count = shape_size(batch);
    for (int64_t i = 0; i < batch_count && y.size() > 0; ++i)
      cpu::gemm<int32_t>(false, false, m, n, k, aw.data() + a_index[static_cast<size_t>(i)] * m * k,
                         bw.data() + b_index[static_cast<size_t>(i)] * k * n,
                         y.data<int32_t>() + i * m * n);
  }
};

}  // namespace

GRAFT_CPU_KERNELS(matmul_integer) {
  reg.add({"", "MatMulInteger", 10, 1 << 30, {DType::UInt8, DType::Int8}, 0, make<MatMulInteger>});
}

}  // namespace graft
