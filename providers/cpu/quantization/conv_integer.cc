// ConvInteger (int32 output) and QLinearConv (requantized 8-bit output): convolutions of 8-bit
// data after subtracting zero points (per tensor for x, per tensor or per output channel for w),
// as im2col and an int32 GEMM.
#include <algorithm>
#include <cmath>
#include <string>

#include "exec/kernel.h"
#include "providers/cpu/quantization/quant_util.h"

namespace graft {
namespace {

// Fails unless a w_scale / w_zero_point has one value, or one per output channel.
void check_per_channel(size_t count, int64_t maps, const char* what, const KernelContext& ctx) {
  if (count != 1 && static_cast<int64_t>(count) != maps)
    ctx.fail(std::string(what) + " has " + std::to_string(count) + " elements, expected 1 or " +
             std::to_string(maps));
}

// Fails unless an x / y scale or zero point has at most one value.
void check_per_tensor(size_t count, const char* what, const KernelContext& ctx) {
  if (count > 1)
    ctx.fail(std::string(what) + " must be a scalar, got " + std::to_string(count) + " elements");
}

class ConvInteger : public Kernel {
 public:
  explicit ConvInteger(const KernelInfo& info) : attrs_(info), group_(info.attr_int("group", 1)) {
    if (group_ <= 0) info.fail("group must be positive");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    const cpu::IntConvProblem p = cpu::resolve_int_conv(x, w, attrs_, group_, ctx);
    const std::vector<int32_t> xz = cpu::zero_point_values(ctx, 2, x.dtype(), "x_zero_point");
    const std::vector<int32_t> wz = cpu::zero_point_values(ctx, 3, w.dtype(), "w_zero_point");
    check_per_tensor(xz.size(), "x_zero_point", ctx);
    if (!wz.empty()) check_per_channel(wz.size(), p.maps, "w_zero_point", ctx);
    const std::vector<int32_t> xw = cpu::widen_8bit(x, xz, "x", ctx);
    const std::vector<int32_t> ww = cpu::widen_8bit(w, wz, "w", ctx);
    Tensor& y = ctx.output(0, DType::Int32, p.output_shape());
    if (y.size() > 0) cpu::int32_conv(p, xw.data(), ww.data(), y.data<int32_t>());
  }

 private:
  WindowAttrs attrs_;
  int64_t group_;
};

class QLinearConv : public Kernel {
 public:
  explicit QLinearConv(const KernelInfo& info) : attrs_(info), group_(info.attr_int("group", 1)) {
    if (group_ <= 0) info.fail("group must be positive");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(3);
    const cpu::IntConvProblem p = cpu::resolve_int_conv(x, w, attrs_, group_, ctx);
    const std::vector<int32_t> xz = cpu::zero_point_values(ctx, 2, x.dtype(), "x_zero_point");
    const std::vector<int32_t> wz = cpu::zero_point_values(ctx, 5, w.dtype(), "w_zero_point");
    const std::vector<double> xs = cpu::to_double_values(ctx.input(1), "x_scale");
    const std::vector<double> ws = cpu::to_double_values(ctx.input(4), "w_scale");
    const std::vector<double> ys = cpu::to_double_values(ctx.input(6), "y_scale");
    const DType out = ctx.has_input(7) ? ctx.input(7).dtype() : x.dtype();
    if (out != DType::Int8 && out != DType::UInt8)
      ctx.fail(std::string("y_zero_point must be int8 or uint8, got ") + dtype_name(out));
    const std::vector<int32_t> yz = ctx.has_input(7)
                                        ? cpu::zero_point_values(ctx, 7, out, "y_zero_point")
                                        : std::vector<int32_t>{0};
    if (xs.size() != 1 || ys.size() != 1) ctx.fail("x_scale and y_scale must be scalars");
    check_per_tensor(xz.size(), "x_zero_point", ctx);
    check_per_tensor(yz.size(), "y_zero_point", ctx);
    check_per_channel(ws.size(), p.maps, "w_scale", ctx);
    if (!wz.empty()) check_per_channel(wz.size(), p.maps, "w_zero_point", ctx);
    const int32_t* bias = nullptr;
    if (ctx.has_input(8)) {
      const Tensor& b = ctx.input(8);
      if (b.dtype() != DType::Int32 || b.rank() != 1 || b.dim(0) != p.maps)
        ctx.fail("B must be a 1-D int32 tensor of " + std::to_string(p.maps) + " elements");
      bias = b.data<int32_t>();
    }

    const std::vector<int32_t> xw = cpu::widen_8bit(x, xz, "x", ctx);
    const std::vector<int32_t> ww = cpu::widen_8bit(w, wz, "w", ctx);
    const Shape out_shape = p.output_shape();
    Tensor& y = ctx.output(0, out, out_shape);
    if (y.size() == 0) return;
    std::vector<int32_t> acc(static_cast<size_t>(y.size()));
    cpu::int32_conv(p, xw.data(), ww.data(), acc.data());

    // The multiplier is formed in float and applied in double, as the reference does.
    std::vector<double> multiplier(static_cast<size_t>(p.maps));
    for (int64_t m = 0; m < p.maps; ++m) {
      const double wscale = ws[ws.size() == 1 ? 0 : static_cast<size_t>(m)];
      multiplier[static_cast<size_t>(m)] = cpu::round_to_dtype(
          DType::Float, cpu::round_to_dtype(DType::Float, xs[0] * wscale) / ys[0]);
    }
    const auto [lo, hi] = cpu::integer_range(out);
    const int64_t plane = shape_size(p.g.out);
    auto requantize = [&](auto* dst) {
      using Q = std::remove_pointer_t<decltype(dst)>;
      for (int64_t row = 0; row < p.batch * p.maps; ++row) {
        const size_t m = static_cast<size_t>(row % p.maps);
        const int64_t b = bias ? bias[m] : 0;
        for (int64_t i = row * plane; i < (row + 1) * plane; ++i) {
          const double v =
              static_cast<double>(acc[static_cast<size_t>(i)] + b) * multiplier[m] + yz[0];
          dst[i] = static_cast<Q>(
              cpu::saturate_round_double(v, static_cast<double>(lo), static_cast<double>(hi)));
        }
      }
    };
    if (out == DType::Int8)
      requantize(y.data<int8_t>());
    else
      requantize(y.data<uint8_t>());
  }

 private:
  WindowAttrs attrs_;
  int64_t group_;
};

}  // namespace

GRAFT_CPU_KERNELS(conv_integer) {
  reg.add({"", "ConvInteger", 10, 1 << 30, {DType::UInt8, DType::Int8}, 0, make<ConvInteger>});
  reg.add({"", "QLinearConv", 10, 1 << 30, {DType::UInt8, DType::Int8}, 0, make<QLinearConv>});
}

}  // namespace graft
