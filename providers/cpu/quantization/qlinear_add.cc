// com.graft QLinearAdd (onnxruntime's com.microsoft op of that name): C = quantize(dequantize(A) +
// dequantize(B)), with broadcasting, which ir/transforms/fuse_qdq.cc makes of a QDQ model's
// DequantizeLinear, DequantizeLinear -> Add [-> Relu] -> QuantizeLinear. Inputs: A, A_scale,
// A_zero_point, B, B_scale, B_zero_point, C_scale, C_zero_point; scales float scalars, A, B, C
// and the zero points one 8-bit type. Each element is computed as the three nodes compute it, in
// float: (a - a_zero) * a_scale + (b - b_zero) * b_scale, divided by C_scale, rounded half to
// even, plus C_zero_point, saturated; so the fused graph gives the same bytes as the unfused one.
#include <string>

#include "exec/kernel.h"
#include "ir/names.h"
#include "providers/cpu/broadcast.h"
#include "providers/cpu/quantization/quant_util.h"

namespace graft {
namespace {

struct Affine {
  float a_scale, a_zero, b_scale, b_zero, c_scale, c_zero, lo, hi;
};

// `count` elements; A advances by `sa` (0 or 1) per element, B by `sb`.
template <typename Q, int64_t SA, int64_t SB>
void add_run(const Affine& f, const Q* a, const Q* b, Q* c, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const float x = (static_cast<float>(a[i * SA]) - f.a_zero) * f.a_scale +
                    (static_cast<float>(b[i * SB]) - f.b_zero) * f.b_scale;
    c[i] = cpu::saturate_round<Q>(x / f.c_scale, f.c_zero, f.lo, f.hi);
  }
}

class QLinearAdd : public Kernel {
 public:
  explicit QLinearAdd(const KernelInfo& info) {
    if (info.num_inputs() != 8)
      info.fail("takes 8 inputs, got " + std::to_string(info.num_inputs()));
  }

  void compute(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(3);
    const DType dtype = a.dtype();
    if (dtype != DType::UInt8 && dtype != DType::Int8)
      ctx.fail(std::string("A must be uint8 or int8, got ") + dtype_name(dtype));
    if (b.dtype() != dtype)
      ctx.fail(std::string("B must be ") + dtype_name(dtype) + " as A is, got " +
               dtype_name(b.dtype()));
    const auto [lo, hi] = cpu::integer_range(dtype);
    Affine f{scale(ctx, 1, "A_scale"), zero(ctx, 2, dtype, "A_zero_point"),
             scale(ctx, 4, "B_scale"), zero(ctx, 5, dtype, "B_zero_point"),
             scale(ctx, 6, "C_scale"), zero(ctx, 7, dtype, "C_zero_point"),
             static_cast<float>(lo),   static_cast<float>(hi)};
    const BroadcastPlan plan({a.shape(), b.shape()},
                             broadcast_shapes({a.shape(), b.shape()}, ctx.describe()),
                             ctx.describe());
    Tensor& c = ctx.output(0, dtype, plan.output_shape());
    const auto run = [&](auto tag) {
      using Q = typename decltype(tag)::type;
      const Q* av = a.data<Q>();
      const Q* bv = b.data<Q>();
      Q* cv = c.data<Q>();
      const int64_t sa = plan.inner_stride(0), sb = plan.inner_stride(1);
      plan.for_each_chunk([&](int64_t out, const int64_t* in, int64_t count) {
        const Q* ap = av + in[0];
        const Q* bp = bv + in[1];
        if (sa == 1 && sb == 1)
          add_run<Q, 1, 1>(f, ap, bp, cv + out, count);
        else if (sa == 1)
          add_run<Q, 1, 0>(f, ap, bp, cv + out, count);
        else if (sb == 1)
          add_run<Q, 0, 1>(f, ap, bp, cv + out, count);
        else
          add_run<Q, 0, 0>(f, ap, bp, cv + out, count);
      });
    };
    if (dtype == DType::UInt8)
      run(std::type_identity<uint8_t>());
    else
      run(std::type_identity<int8_t>());
  }

 private:
  static float scale(const KernelContext& ctx, int index, const char* what) {
    const Tensor& s = ctx.input(index);
    if (s.dtype() != DType::Float || s.size() != 1)
      ctx.fail(std::string(what) + " must be one float, got " + dtype_name(s.dtype()) + " " +
               shape_to_string(s.shape()));
    return s.data<float>()[0];
  }

  static float zero(const KernelContext& ctx, int index, DType dtype, const char* what) {
    const std::vector<int32_t> z = cpu::zero_point_values(ctx, index, dtype, what);
    if (z.size() > 1) ctx.fail(std::string(what) + " must be a scalar");
    return z.empty() ? 0.0f : static_cast<float>(z[0]);
  }
};

}  // namespace

GRAFT_CPU_KERNELS(qlinear_add) {
  reg.add(
      {names::kDomain, "QLinearAdd", 1, 1 << 30, {DType::UInt8, DType::Int8}, 0, make<QLinearAdd>});
}

}  // namespace graft
