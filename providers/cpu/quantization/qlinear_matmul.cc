// QLinearMatMul: a MatMul of quantized a and b (scales and zero points per tensor, per row of a
// and per column of b) requantized to y's scale and zero point. 8-bit inputs multiply in int32;
// float8 inputs are dequantized and multiplied in double.
#include <algorithm>
#include <cmath>
#include <string>

#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"
#include "providers/cpu/quantization/quant_util.h"

namespace graft {
namespace {

bool is_8bit(DType dtype) { return dtype == DType::Int8 || dtype == DType::UInt8; }
bool is_small_float(DType dtype) { return dtype_is_float8(dtype) && dtype != DType::Float8E8M0; }

// A scale or zero point of a matrix operand of (padded) shape `shape`, given per tensor, or per
// row (`drop` is the last dim) or per column (`drop` is the second-to-last): one value per entry
// of `shape` without dim `drop`. Absent (`p` null) means 0.
std::vector<double> expand_params(const Tensor* p, const Shape& shape, size_t drop,
                                  const char* what, const KernelContext& ctx) {
  Shape target = shape;
  target.erase(target.begin() + static_cast<std::ptrdiff_t>(drop));
  const size_t count = static_cast<size_t>(shape_size(target));
  if (p == nullptr) return std::vector<double>(count, 0.0);
  const std::vector<double> values = cpu::to_double_values(*p, what);
  if (values.size() == 1) return std::vector<double>(count, values[0]);
  Shape from = p->shape();
  if (from.size() == shape.size() && from[drop] == 1)
    from.erase(from.begin() + static_cast<std::ptrdiff_t>(drop));
  std::vector<double> out;
  if (from.size() >= shape.size() || !cpu::broadcast_values(values, from, target, out))
    ctx.fail(std::string(what) + " of shape " + shape_to_string(p->shape()) +
             " is neither a scalar nor per " + (drop + 1 == shape.size() ? "row" : "column") +
             " of an operand of shape " + shape_to_string(shape));
  return out;
}

// a[.., row, :] -= a_zero[row] and b[.., :, col] -= b_zero[col] (zero points per matrix row of a
// and per matrix column of b, batches included).
template <typename T, typename Z>
void subtract_zero_points(std::vector<T>& a, const std::vector<Z>& a_zero, std::vector<T>& b,
                          const std::vector<Z>& b_zero, int64_t k, int64_t n) {
  for (size_t row = 0; row < a_zero.size(); ++row)
    for (int64_t p = 0; p < k; ++p)
      a[row * static_cast<size_t>(k) + static_cast<size_t>(p)] -= static_cast<T>(a_zero[row]);
  const size_t b_batches = b_zero.size() / static_cast<size_t>(n);
  for (size_t bi = 0; bi < b_batches; ++bi)
    for (int64_t p = 0; p < k; ++p) {
      T* row = b.data() +
               (bi * static_cast<size_t>(k) + static_cast<size_t>(p)) * static_cast<size_t>(n);
      const Z* zero = b_zero.data() + bi * static_cast<size_t>(n);
      for (int64_t j = 0; j < n; ++j) row[j] -= static_cast<T>(zero[j]);
    }
}

class QLinearMatMul : public Kernel {
 public:
  explicit QLinearMatMul(const KernelInfo& info) {}

  void compute(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(3);
    const Tensor& a_scale = ctx.input(1);
    if (a.rank() == 0 || b.rank() == 0) ctx.fail("operands must have rank 1 or more");
    if (!(is_8bit(a.dtype()) && is_8bit(b.dtype())) &&
        !(is_small_float(a.dtype()) && is_small_float(b.dtype())))
      ctx.fail(std::string("a and b must both be 8-bit integers or both float8, got ") +
               dtype_name(a.dtype()) + " and " + dtype_name(b.dtype()));
    for (int i : {4, 6})
      if (ctx.input(i).dtype() != a_scale.dtype()) ctx.fail("the scales must share one dtype");
    for (int i : {2, 5})
      if (ctx.has_input(i) && ctx.input(i).dtype() != ctx.input(i - 2).dtype())
        ctx.fail("a zero point must have its operand's dtype");
    const DType out = ctx.has_input(7) ? ctx.input(7).dtype() : a.dtype();
    if (!is_8bit(out) && !is_small_float(out))
      ctx.fail(std::string("y_zero_point must be 8-bit or float8, got ") + dtype_name(out));

    const MatMulShape plan = plan_matmul(ctx, a.shape(), b.shape());
    const Shape &as = plan.a, &bs = plan.b, &batch = plan.batch;
    const int64_t m = plan.m, k = plan.k, n = plan.n;
    const std::vector<int64_t>&a_index = plan.a_index, &b_index = plan.b_index;
    const Shape& y_shape = plan.out;

    auto opt = [&](int i) { return ctx.has_input(i) ? &ctx.input(i) : nullptr; };
    const std::vector<double> a_s = expand_params(&a_scale, as, as.size() - 1, "a_scale", ctx);
    const std::vector<double> a_z = expand_params(opt(2), as, as.size() - 1, "a_zero_point", ctx);
    const std::vector<double> b_s = expand_params(&ctx.input(4), bs, bs.size() - 2, "b_scale", ctx);
    const std::vector<double> b_z = expand_params(opt(5), bs, bs.size() - 2, "b_zero_point", ctx);
    std::vector<double> y_s, y_z;
    const std::vector<double> ys_values = cpu::to_double_values(ctx.input(6), "y_scale");
    const std::vector<double> yz_values = ctx.has_input(7)
                                              ? cpu::to_double_values(ctx.input(7), "y_zero_point")
                                              : std::vector<double>{0.0};
    if (!cpu::broadcast_values(ys_values, ctx.input(6).shape(), y_shape, y_s) ||
        !cpu::broadcast_values(yz_values, ctx.has_input(7) ? ctx.input(7).shape() : Shape{},
                               y_shape, y_z))
      ctx.fail("y_scale and y_zero_point must broadcast to the output " + shape_to_string(y_shape));

    const int64_t batch_count = shape_size(batch);
    std::vector<double> product(static_cast<size_t>(batch_count * m * n));
    if (is_8bit(a.dtype())) {
      std::vector<int32_t> a_rows(a_z.begin(), a_z.end()), b_cols(b_z.begin(), b_z.end());
      std::vector<int32_t> aw = cpu::widen_8bit(a, {}, "a", ctx);
      std::vector<int32_t> bw = cpu::widen_8bit(b, {}, "b", ctx);
      subtract_zero_points(aw, a_rows, bw, b_cols, k, n);
      std::vector<int32_t> c(static_cast<size_t>(m * n));
      for (int64_t i = 0; i < batch_count; ++i) {
        cpu::int32_gemm(m, n, k, aw.data() + a_index[static_cast<size_t>(i)] * m * k,
                        bw.data() + b_index[static_cast<size_t>(i)] * k * n, c.data());
        std::copy(c.begin(), c.end(), product.begin() + i * m * n);
      }
    } else {
      std::vector<double> av = cpu::to_double_values(a, "a"), bv = cpu::to_double_values(b, "b");
      subtract_zero_points(av, a_z, bv, b_z, k, n);
      for (int64_t i = 0; i < batch_count; ++i)
        cpu::gemm<double>(
            false, false, m, n, k, av.data() + a_index[static_cast<size_t>(i)] * m * k,
            bv.data() + b_index[static_cast<size_t>(i)] * k * n, product.data() + i * m * n);
    }

    // The multiplier a_scale * b_scale / y_scale is formed in the scales' type, as the
    // reference does; the requantization itself runs in double.
    const DType st = a_scale.dtype();
    auto multiplier = [&](size_t a_row, size_t b_col, size_t idx) {
      return cpu::round_to_dtype(st, cpu::round_to_dtype(st, a_s[a_row] * b_s[b_col]) / y_s[idx]);
    };
    const bool one_multiplier =
        a_scale.size() == 1 && ctx.input(4).size() == 1 && ctx.input(6).size() == 1;
    const double common = product.empty() ? 0.0 : multiplier(0, 0, 0);
    Tensor& y = ctx.output(0, out, y_shape);
    auto requantize = [&](auto store) {
      for (int64_t bi = 0; bi < batch_count; ++bi) {
        const size_t ar = static_cast<size_t>(a_index[static_cast<size_t>(bi)] * m);
        const size_t bc = static_cast<size_t>(b_index[static_cast<size_t>(bi)] * n);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            const size_t idx = static_cast<size_t>((bi * m + i) * n + j);
            const double mult = one_multiplier ? common
                                               : multiplier(ar + static_cast<size_t>(i),
                                                            bc + static_cast<size_t>(j), idx);
            store(idx, product[idx] * mult + y_z[idx]);
          }
        }
      }
    };
    if (out == DType::Int8) {
      int8_t* dst = y.data<int8_t>();
      requantize([&](size_t i, double v) {
        dst[i] = static_cast<int8_t>(cpu::saturate_round_double(v, -128.0, 127.0));
      });
    } else if (out == DType::UInt8) {
      uint8_t* dst = y.data<uint8_t>();
      requantize([&](size_t i, double v) {
        dst[i] = static_cast<uint8_t>(cpu::saturate_round_double(v, 0.0, 255.0));
      });
    } else {
      uint8_t* dst = y.data<uint8_t>();
      requantize([&](size_t i, double v) {
        dst[i] = float_to_small_float(out, static_cast<float>(v), true);
      });
    }
  }
};

}  // namespace

GRAFT_CPU_KERNELS(qlinear_matmul) {
  reg.add({"", "QLinearMatMul", 10, 20, {DType::UInt8, DType::Int8}, 0, make<QLinearMatMul>});
  reg.add({"",
           "QLinearMatMul",
           21,
           1 << 30,
           {DType::UInt8, DType::Int8, DType::Float8E4M3FN, DType::Float8E4M3FNUZ,
            DType::Float8E5M2, DType::Float8E5M2FNUZ},
           0,
           make<QLinearMatMul>});
}

}  // namespace graft
