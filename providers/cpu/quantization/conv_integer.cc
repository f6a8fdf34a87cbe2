// ConvInteger (int32 output) and QLinearConv (requantized 8-bit output): convolutions of 8-bit
// data after subtracting zero points (per tensor for x, per tensor or per output channel for w),
// as im2col and an int32 GEMM. A 2-D QLinearConv whose int8 weights, scales and zero points are
// constants (a quantized model's) runs through oneDNN's int8 convolution instead, its weights
// packed once (dnnl_int8.h), or where those products would saturate (no VNNI, 8-bit weights),
// through oneDNN's float convolution of the integer values. com.graft NhwcQLinearConv is the same
// QLinearConv on channels-last x and y ([N, H, W, C]), which ir/transforms/nhwc_int8.cc chains
// so that oneDNN's int8 kernels, which work in that layout, read and write them directly.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "exec/kernel.h"
#include "ir/names.h"
#include "providers/cpu/nn/dnnl_conv.h"
#include "providers/cpu/provider.h"
#include "providers/cpu/quantization/dnnl_int8.h"
#include "providers/cpu/quantization/quant_util.h"
#include "providers/cpu/tensor/tensor_util.h"

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

// The values of constant input `i` as doubles; empty when the input is absent or not constant.
std::vector<double> constant_values(const KernelInfo& info, int i, const char* what) {
  const Tensor* t = info.has_input(i) ? info.constant_input(i) : nullptr;
  return t ? cpu::to_double_values(*t, what) : std::vector<double>{};
}

// The multiplier from the accumulator to y's scale, formed in float as the reference does.
float requant_scale(double x_scale, double w_scale, double y_scale) {
  return static_cast<float>(cpu::round_to_dtype(
      DType::Float, cpu::round_to_dtype(DType::Float, x_scale * w_scale) / y_scale));
}

class QLinearConv : public Kernel {
 public:
  explicit QLinearConv(const KernelInfo& info)
      : attrs_(info),
        group_(info.attr_int("group", 1)),
        channels_last_(info.op_type() == "NhwcQLinearConv") {
    if (group_ <= 0) info.fail("group must be positive");
    build_packed(info);
    if (channels_last_ && !constant_weights_)
      info.fail(
          "runs channels-last only with constant 4-D int8 weights, symmetric (zero w zero "
          "points), and constant scales and zero points");
  }

  std::vector<int> packed_inputs() const override {
    if (!constant_weights_) return {};
    if (has_bias_) return {3, 8};
    return {3};
  }

  void compute(KernelContext& ctx) override {
    if (constant_weights_) return compute_packed(ctx);
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
    const auto range = cpu::integer_range(out);  // captured below: not a structured binding
    const auto lo = range.first, hi = range.second;
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
  // Packs the weights for oneDNN when the node is a 2-D convolution of int8 weights whose
  // scales and zero points are constants, x and y quantized per tensor and w symmetrically
  // (oneDNN has no weight zero points); leaves constant_weights_ false otherwise.
  void build_packed(const KernelInfo& info) {
    const Tensor* w = info.constant_input(3);
    if (!w || w->dtype() != DType::Int8 || w->rank() != 4) return;
    if (info.has_input(8) && !info.constant_input(8)) return;
    const Tensor* xz = info.has_input(2) ? info.constant_input(2) : nullptr;
    const Tensor* yz = info.has_input(7) ? info.constant_input(7) : nullptr;
    DType x_dtype = info.input_dtype(0);
    if (x_dtype == DType::Undefined && xz) x_dtype = xz->dtype();
    const DType y_dtype = yz ? yz->dtype() : x_dtype;
    const auto is_8bit = [](DType d) { return d == DType::UInt8 || d == DType::Int8; };
    if (!is_8bit(x_dtype) || !is_8bit(y_dtype)) return;
    if ((info.has_input(2) && !xz) || (info.has_input(7) && !yz)) return;
    const std::vector<double> xs = constant_values(info, 1, "x_scale");
    const std::vector<double> ws = constant_values(info, 4, "w_scale");
    const std::vector<double> ys = constant_values(info, 6, "y_scale");
    const std::vector<double> xzv = constant_values(info, 2, "x_zero_point");
    const std::vector<double> wzv = constant_values(info, 5, "w_zero_point");
    const std::vector<double> yzv = constant_values(info, 7, "y_zero_point");
    if (info.has_input(5) && !info.constant_input(5)) return;
    const int64_t maps = w->dim(0);
    if (xs.size() != 1 || ys.size() != 1 || xzv.size() > 1 || yzv.size() > 1) return;
    if (ws.size() != 1 && static_cast<int64_t>(ws.size()) != maps) return;
    if (std::any_of(wzv.begin(), wzv.end(), [](double z) { return z != 0.0; })) return;
    if (maps % group_ != 0) return;
    const Tensor* b = info.has_input(8) ? info.constant_input(8) : nullptr;
    if (b && (b->dtype() != DType::Int32 || b->rank() != 1 || b->dim(0) != maps))
      info.fail("B must be a 1-D int32 tensor of " + std::to_string(maps) + " elements");

    if ((!attrs_.strides.empty() && attrs_.strides.size() != 2) ||
        (!attrs_.dilations.empty() && attrs_.dilations.size() != 2))
      return;
    if (!attrs_.kernel_shape.empty() && attrs_.kernel_shape != Shape{w->dim(2), w->dim(3)})
      info.fail("kernel_shape does not match w's spatial dims");

    cpu::Int8ConvSpec spec;
    spec.channels = w->dim(1) * group_;
    spec.maps = maps;
    spec.group = group_;
    for (int i = 0; i < 2; ++i) {
      spec.kernel[i] = w->dim(2 + i);
      if (!attrs_.strides.empty()) spec.strides[i] = attrs_.strides[static_cast<size_t>(i)];
      if (!attrs_.dilations.empty()) spec.dilations[i] = attrs_.dilations[static_cast<size_t>(i)];
    }
    spec.x_zero = xzv.empty() ? 0 : static_cast<int32_t>(xzv[0]);
    spec.requant.x_dtype = x_dtype;
    spec.requant.y_dtype = y_dtype;
    spec.requant.y_zero = yzv.empty() ? 0 : static_cast<int32_t>(yzv[0]);
    for (double s : ws) spec.requant.scales.push_back(requant_scale(xs[0], s, ys[0]));
    spec_ = spec;
    has_bias_ = b != nullptr;
    constant_weights_ = true;
    if (cpu::dnnl_int8_usable(cpu::int8_exact(info), x_dtype, w->data<int8_t>(), w->size())) {
      packed_ = std::make_unique<cpu::DnnlInt8Conv>(spec, w->data<int8_t>(),
                                                    b ? b->data<int32_t>() : nullptr);
      return;
    }
    // Without exact int8 products on this CPU: a float convolution of the integer values, whose
    // sums round only past 2^24, far below a quantization step of the result.
    float_weights_.assign(w->data<int8_t>(), w->data<int8_t>() + w->size());
    float_bias_.assign(static_cast<size_t>(maps), 0.0f);
    if (b) float_bias_.assign(b->data<int32_t>(), b->data<int32_t>() + maps);
  }

  // y from the float convolution of x - x_zero with the float copy of the weights.
  void compute_float(const Tensor& x, const cpu::Int8ConvGeometry& g, Tensor& y) const {
    std::vector<float> xf(static_cast<size_t>(x.size()));
    const float zero = static_cast<float>(spec_.x_zero);
    if (x.dtype() == DType::UInt8) {
      const uint8_t* src = x.data<uint8_t>();
      for (size_t i = 0; i < xf.size(); ++i) xf[i] = static_cast<float>(src[i]) - zero;
    } else {
      const int8_t* src = x.data<int8_t>();
      for (size_t i = 0; i < xf.size(); ++i) xf[i] = static_cast<float>(src[i]) - zero;
    }
    cpu::DnnlConvShape s{};
    s.batch = g.batch;
    s.channels = spec_.channels;
    s.maps = spec_.maps;
    s.group = spec_.group;
    for (int i = 0; i < 2; ++i) {
      s.in[i] = g.in[i];
      s.kernel[i] = spec_.kernel[i];
      s.out[i] = g.out[i];
      s.strides[i] = spec_.strides[i];
      s.dilations[i] = spec_.dilations[i];
    }
    std::copy(g.pads, g.pads + 4, s.pads);
    std::vector<float> acc(static_cast<size_t>(y.size()));
    cpu::dnnl_conv_forward(s, xf.data(), float_weights_.data(), float_bias_.data(), acc.data());
    const int64_t plane = g.out[0] * g.out[1];
    const auto range = cpu::integer_range(spec_.requant.y_dtype);  // captured: not bound
    const auto lo = range.first, hi = range.second;
    const std::vector<float>& scales = spec_.requant.scales;
    auto requantize = [&](auto* dst) {
      using Q = std::remove_pointer_t<decltype(dst)>;
      for (int64_t row = 0; row < g.batch * spec_.maps; ++row) {
        const float scale = scales[scales.size() == 1 ? 0 : static_cast<size_t>(row % spec_.maps)];
        for (int64_t i = row * plane; i < (row + 1) * plane; ++i)
          dst[i] = cpu::saturate_round<Q>(acc[static_cast<size_t>(i)] * scale,
                                          static_cast<float>(spec_.requant.y_zero),
                                          static_cast<float>(lo), static_cast<float>(hi));
      }
    };
    if (spec_.requant.y_dtype == DType::Int8)
      requantize(y.data<int8_t>());
    else
      requantize(y.data<uint8_t>());
  }

  void compute_packed(KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != spec_.requant.x_dtype)
      ctx.fail(std::string("x must be ") + dtype_name(spec_.requant.x_dtype) +
               " as its zero point, got " + dtype_name(x.dtype()));
    const int c_axis = channels_last_ ? 3 : 1;
    if (x.rank() != 4 || x.dim(c_axis) != spec_.channels)
      ctx.fail("x " + shape_to_string(x.shape()) + " must be " +
               (channels_last_ ? "[N, H, W, " + std::to_string(spec_.channels) + "]"
                               : "[N, " + std::to_string(spec_.channels) + ", H, W]") +
               " for w of " + std::to_string(spec_.channels / spec_.group) + " channels in " +
               std::to_string(spec_.group) + " groups");
    const Shape in = channels_last_ ? Shape{x.dim(1), x.dim(2)} : Shape{x.dim(2), x.dim(3)};
    const WindowGeometry g = attrs_.resolve(in, {spec_.kernel[0], spec_.kernel[1]}, ctx);
    cpu::Int8ConvGeometry geometry;
    geometry.batch = x.dim(0);
    for (size_t i = 0; i < 2; ++i) {
      geometry.in[i] = g.in[i];
      geometry.out[i] = g.out[i];
      geometry.pads[i] = g.pads[i];
      geometry.pads[i + 2] = g.pads[i + 2];
    }
    const Shape nchw = {x.dim(0), spec_.maps, g.out[0], g.out[1]};
    Tensor& y = ctx.output(0, spec_.requant.y_dtype,
                           channels_last_ ? Shape{x.dim(0), g.out[0], g.out[1], spec_.maps} : nchw);
    if (y.size() == 0) return;
    if (packed_) {
      packed_->run(geometry, x.raw(), y.raw(), channels_last_);
    } else if (!channels_last_) {
      compute_float(x, geometry, y);
    } else {
      Tensor plain_x = Tensor::empty(x.dtype(), Shape{x.dim(0), x.dim(3), x.dim(1), x.dim(2)});
      move_channels(x, plain_x, false);
      Tensor plain_y = Tensor::empty(y.dtype(), nchw);
      compute_float(plain_x, geometry, plain_y);
      move_channels(plain_y, y, true);
    }
  }

  // `src` [N, C, H, W] written to `dst` as [N, H, W, C] (`to_last`), or back; 8-bit elements.
  static void move_channels(const Tensor& src, Tensor& dst, bool to_last) {
    const int64_t n = src.dim(0);
    const int64_t c = to_last ? src.dim(1) : src.dim(3);
    const int64_t plane = to_last ? src.dim(2) * src.dim(3) : src.dim(1) * src.dim(2);
    const auto move = [&](auto* out, const auto* in) {
      // Per image, a [rows, cols] matrix transposed: [C, HW] -> [HW, C] or back.
      const int64_t rows = to_last ? plane : c, cols = to_last ? c : plane;
      for (int64_t i = 0; i < n; ++i)
        tensor_ops::copy_tile(out + i * plane * c, in + i * plane * c, rows, cols, cols, rows);
    };
    if (src.dtype() == DType::Int8)
      move(dst.data<int8_t>(), src.data<int8_t>());
    else
      move(dst.data<uint8_t>(), src.data<uint8_t>());
  }

  WindowAttrs attrs_;
  int64_t group_;
  bool channels_last_;  // NhwcQLinearConv: x and y are [N, H, W, C]
  // Set up for constant weights: packed_ (oneDNN's int8 convolution), or float_weights_ and
  // float_bias_ where its products would not be exact.
  bool constant_weights_ = false;
  std::unique_ptr<cpu::DnnlInt8Conv> packed_;
  std::vector<float> float_weights_, float_bias_;
  cpu::Int8ConvSpec spec_;
  bool has_bias_ = false;
};

}  // namespace

GRAFT_CPU_KERNELS(conv_integer) {
  reg.add({"", "ConvInteger", 10, 1 << 30, {DType::UInt8, DType::Int8}, 0, make<ConvInteger>});
  reg.add({"", "QLinearConv", 10, 1 << 30, {DType::UInt8, DType::Int8}, 0, make<QLinearConv>});
  reg.add({names::kDomain,
           "NhwcQLinearConv",
           1,
           1 << 30,
           {DType::UInt8, DType::Int8},
           0,
           make<QLinearConv>});
}

}  // namespace graft
