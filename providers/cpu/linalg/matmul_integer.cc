// MatMulInteger: int32 product of 8-bit matrices after subtracting zero points (a scalar, or per
// row of A / per column of B). With a constant 2-D int8 B of zero zero point (the weights of a
// dynamically quantized model) the product runs through oneDNN's int8 matmul, B packed once
// (dnnl_int8.h), where the CPU computes it exactly.
#include <algorithm>
#include <memory>

#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"
#include "providers/cpu/provider.h"
#include "providers/cpu/quantization/dnnl_int8.h"

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
  explicit MatMulInteger(const KernelInfo& info) {
    const Tensor* b = info.constant_input(1);
    if (!b || b->dtype() != DType::Int8 || b->rank() != 2) return;
    if (info.has_input(3)) {
      const Tensor* zp = info.constant_input(3);
      if (!zp || zp->dtype() != DType::Int8) return;
      const int8_t* z = zp->data<int8_t>();
      if (std::any_of(z, z + zp->size(), [](int8_t v) { return v != 0; })) return;
    }
    DType a_dtype = info.input_dtype(0);
    if (a_dtype == DType::Undefined && info.has_input(2) && info.constant_input(2))
      a_dtype = info.constant_input(2)->dtype();
    if (a_dtype != DType::UInt8 && a_dtype != DType::Int8) return;
    if (!cpu::dnnl_int8_usable(cpu::int8_exact(info), a_dtype, b->data<int8_t>(), b->size()))
      return;
    cpu::Int8Requant requant;
    requant.x_dtype = a_dtype;
    k_ = b->dim(0);
    n_ = b->dim(1);
    // Sum of each column of B: a zero point per row of A subtracts a_zero[row] * sum(B[:, j]).
    column_sums_.assign(static_cast<size_t>(n_), 0);
    const int8_t* bv = b->data<int8_t>();
    for (int64_t p = 0; p < k_; ++p)
      for (int64_t j = 0; j < n_; ++j) column_sums_[static_cast<size_t>(j)] += bv[p * n_ + j];
    packed_ = std::make_unique<cpu::DnnlInt8MatMul>(k_, n_, bv, requant);
    a_dtype_ = a_dtype;
  }

  std::vector<int> packed_inputs() const override {
    if (packed_) return {1};
    return {};
  }

  void compute(KernelContext& ctx) override {
    if (packed_) return compute_packed(ctx);
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

 private:
  void compute_packed(KernelContext& ctx) {
    const Tensor& a = ctx.input(0);
    if (a.dtype() != a_dtype_)
      ctx.fail(std::string("A must be ") + dtype_name(a_dtype_) + ", got " + dtype_name(a.dtype()));
    const MatMulShape plan = plan_matmul(ctx, a.shape(), {k_, n_});
    // B is one matrix, so A's batches and rows are the rows of one product.
    const int64_t rows = k_ > 0 ? a.size() / k_ : shape_size(plan.out) / std::max<int64_t>(n_, 1);
    std::vector<int32_t> zero;
    if (ctx.has_input(2)) {
      const Tensor& zp = ctx.input(2);
      if (zp.dtype() != a.dtype()) ctx.fail("a_zero_point must have A's dtype");
      zero = widen(zp, ctx, "a_zero_point");
      if (zero.size() != 1 && static_cast<int64_t>(zero.size()) != plan.m)
        ctx.fail("a_zero_point must be a scalar or have M elements, got " +
                 shape_to_string(zp.shape()));
    }
    Tensor& y = ctx.output(0, DType::Int32, plan.out);
    if (y.size() == 0) return;
    if (k_ == 0) {
      std::fill(y.data<int32_t>(), y.data<int32_t>() + y.size(), 0);
      return;
    }
    const bool per_row = zero.size() > 1;
    packed_->run(rows, a.raw(), zero.size() == 1 ? zero[0] : 0, y.raw());
    if (!per_row) return;
    int32_t* out = y.data<int32_t>();
    for (int64_t r = 0; r < rows; ++r) {
      const int32_t z = zero[static_cast<size_t>(r % plan.m)];
      for (int64_t j = 0; j < n_; ++j) out[r * n_ + j] -= z * column_sums_[static_cast<size_t>(j)];
    }
  }

  std::unique_ptr<cpu::DnnlInt8MatMul> packed_;
  int64_t k_ = 0, n_ = 0;
  DType a_dtype_ = DType::Undefined;
  std::vector<int32_t> column_sums_;
};

}  // namespace

GRAFT_CPU_KERNELS(matmul_integer) {
  reg.add({"", "MatMulInteger", 10, 1 << 30, {DType::UInt8, DType::Int8}, 0, make<MatMulInteger>});
}

}  // namespace graft
