// QuantizeLinear and DequantizeLinear: per-tensor, per-axis and blocked scales; integer outputs
// of 16, 8, 4 and 2 bits and the float8/float4 formats.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "exec/kernel.h"
#include "providers/cpu/quantization/quant_util.h"

namespace graft {
namespace {

using cpu::QuantLayout;

bool is_small_float(DType dtype) { return dtype_is_float8(dtype) && dtype != DType::Float8E8M0; }

// Calls run(begin, count, scale_index, step) over runs of x's elements that share one scale
// (step 0) or read consecutive scales (step 1, blocked layouts); runs go in parallel for large
// tensors.
template <typename F>
void for_each_run(const QuantLayout& layout, F&& run) {
  constexpr int64_t kChunk = 1 << 14;
  if (layout.kind == QuantLayout::Kind::PerTensor) {
    const int64_t count = layout.dim, chunks = (count + kChunk - 1) / kChunk;
#pragma omp parallel for if (chunks > 4)
    for (int64_t c = 0; c < chunks; ++c)
      run(c * kChunk, std::min(kChunk, count - c * kChunk), 0, 0);
    return;
  }
  const int64_t rows = layout.outer * layout.dim;
  const int64_t step = layout.inner_step();
#pragma omp parallel for if (rows * layout.inner > 4 * kChunk)
  for (int64_t r = 0; r < rows; ++r)
    run(r * layout.inner, layout.inner, layout.row_offset(r / layout.dim, r % layout.dim), step);
}

// Calls fn(index, scale_index) for every element of x under `layout`.
template <typename F>
void for_each_quantized(const QuantLayout& layout, F&& fn) {
  for_each_run(layout, [&](int64_t begin, int64_t count, int64_t s, int64_t step) {
    for (int64_t i = 0; i < count; ++i) fn(begin + i, s + i * step);
  });
}

// Integer quantization with the division in float (x a float type, scales exact in float).
template <typename X, typename Q>
void quantize_float(const QuantLayout& layout, const X* x, const std::vector<double>& scale,
                    const std::vector<double>& zero, float lo, float hi, Q* y) {
  for_each_run(layout, [&](int64_t begin, int64_t count, int64_t s, int64_t step) {
    const X* src = x + begin;
    Q* dst = y + begin;
    if (step == 0) {
      const float sc = static_cast<float>(scale[static_cast<size_t>(s)]);
      const float z = static_cast<float>(zero[static_cast<size_t>(s)]);
      for (int64_t i = 0; i < count; ++i)
        dst[i] = cpu::saturate_round<Q>(static_cast<float>(src[i]) / sc, z, lo, hi);
      return;
    }
    for (int64_t i = 0; i < count; ++i) {
      const size_t k = static_cast<size_t>(s + i);
      dst[i] = cpu::saturate_round<Q>(static_cast<float>(src[i]) / static_cast<float>(scale[k]),
                                      static_cast<float>(zero[k]), lo, hi);
    }
  });
}

// Dequantization of 8- and 16-bit integers in float.
template <typename X, typename O>
void dequantize_float(const QuantLayout& layout, const X* x, const std::vector<double>& scale,
                      const std::vector<double>& zero, O* y) {
  for_each_run(layout, [&](int64_t begin, int64_t count, int64_t s, int64_t step) {
    const X* src = x + begin;
    O* dst = y + begin;
    if (step == 0) {
      const float sc = static_cast<float>(scale[static_cast<size_t>(s)]);
      const float z = static_cast<float>(zero[static_cast<size_t>(s)]);
      for (int64_t i = 0; i < count; ++i) dst[i] = O((static_cast<float>(src[i]) - z) * sc);
      return;
    }
    for (int64_t i = 0; i < count; ++i) {
      const size_t k = static_cast<size_t>(s + i);
      dst[i] = O((static_cast<float>(src[i]) - static_cast<float>(zero[k])) *
                 static_cast<float>(scale[k]));
    }
  });
}

// Calls fn(TypeTag<S>) with S the storage type of an integer quantized dtype.
template <typename F>
void dispatch_storage(DType dtype, F&& fn) {
  switch (dtype) {
    case DType::Int8:
    case DType::Int4:
    case DType::Int2:
      return fn(TypeTag<int8_t>{});
    case DType::UInt8:
    case DType::UInt4:
    case DType::UInt2:
      return fn(TypeTag<uint8_t>{});
    case DType::Int16:
      return fn(TypeTag<int16_t>{});
    case DType::UInt16:
      return fn(TypeTag<uint16_t>{});
    default:
      throw_unsupported_dtype(dtype, "quantized storage");
  }
}

// A scale and its optional zero point, checked against each other, as doubles.
struct QuantParams {
  std::vector<double> scale, zero;
};

QuantParams read_params(const KernelContext& ctx, DType zero_dtype, const char* zero_name) {
  const Tensor& scale = ctx.input(1);
  QuantParams p;
  p.scale = cpu::to_double_values(scale, "scale");
  if (ctx.has_input(2)) {
    const Tensor& zp = ctx.input(2);
    if (zp.dtype() != zero_dtype)
      ctx.fail(std::string(zero_name) + " must be " + dtype_name(zero_dtype) + ", got " +
               dtype_name(zp.dtype()));
    if (zp.shape() != scale.shape() && !(zp.size() == 1 && scale.size() == 1))
      ctx.fail(std::string(zero_name) + " " + shape_to_string(zp.shape()) +
               " must have the scale's shape " + shape_to_string(scale.shape()));
    p.zero = cpu::to_double_values(zp, zero_name);
  } else {
    p.zero.assign(p.scale.size(), 0.0);
  }
  return p;
}

class QuantizeLinear : public Kernel {
 public:
  explicit QuantizeLinear(const KernelInfo& info)
      : axis_(info.attr_int("axis", 1)),
        block_size_(info.attr_int("block_size", 0)),
        saturate_(info.attr_int("saturate", 1) != 0),
        output_dtype_(static_cast<DType>(info.attr_int("output_dtype", 0))),
        precision_(static_cast<DType>(info.attr_int("precision", 0))) {
    if (block_size_ < 0) info.fail("block_size must not be negative");
    if (output_dtype_ != DType::Undefined && !cpu::is_quant_integer(output_dtype_) &&
        !is_small_float(output_dtype_))
      info.fail(std::string("output_dtype ") + dtype_name(output_dtype_) +
                " is not a quantized type");
    if (precision_ != DType::Undefined && !dtype_is_float(precision_))
      info.fail(std::string("precision ") + dtype_name(precision_) + " is not a float type");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& scale = ctx.input(1);
    DType out = output_dtype_ == DType::Undefined ? DType::UInt8 : output_dtype_;
    if (ctx.has_input(2)) {
      const DType zero_dtype = ctx.input(2).dtype();
      if (output_dtype_ != DType::Undefined && output_dtype_ != zero_dtype)
        ctx.fail(std::string("output_dtype ") + dtype_name(output_dtype_) +
                 " differs from y_zero_point's dtype " + dtype_name(zero_dtype));
      out = zero_dtype;
    }
    if (!cpu::is_quant_integer(out) && !is_small_float(out))
      ctx.fail(std::string("cannot quantize to ") + dtype_name(out));
    if (!dtype_is_float(x.dtype()) && x.dtype() != DType::Int32)
      ctx.fail(std::string("x must be a float type or int32, got ") + dtype_name(x.dtype()));
    const QuantLayout layout =
        cpu::resolve_quant_layout(x.shape(), scale.shape(), axis_, block_size_, ctx);
    const QuantParams params = read_params(ctx, out, "y_zero_point");
    std::vector<double> sv = params.scale;
    if (precision_ != DType::Undefined)
      for (double& v : sv) v = cpu::round_to_dtype(precision_, v);
    const DType division = division_dtype(x.dtype(), scale.dtype());
    Tensor& y = ctx.output(0, out, x.shape());
    const bool float_x =
        x.dtype() == DType::Float || x.dtype() == DType::Float16 || x.dtype() == DType::BFloat16;
    if (division == DType::Float && float_x && cpu::is_quant_integer(out)) {
      const auto range = cpu::integer_range(out);  // captured below: not a structured binding
      const auto lo = range.first, hi = range.second;
      dispatch_float(x.dtype(), "QuantizeLinear", [&](auto xtag) {
        using X = typename decltype(xtag)::type;
        dispatch_storage(out, [&](auto qtag) {
          using Q = typename decltype(qtag)::type;
          quantize_float<X, Q>(layout, x.data<X>(), sv, params.zero, static_cast<float>(lo),
                               static_cast<float>(hi), y.data<Q>());
        });
      });
      return;
    }

    std::vector<double> xv = cpu::to_double_values(x, "x");
    if (precision_ != DType::Undefined)
      for (double& v : xv) v = cpu::round_to_dtype(precision_, v);
    auto quotient = [&](int64_t i, int64_t s) {
      return cpu::round_to_dtype(division, xv[static_cast<size_t>(i)] / sv[static_cast<size_t>(s)]);
    };
    if (is_small_float(out)) {
      uint8_t* dst = y.data<uint8_t>();
      for_each_quantized(layout, [&](int64_t i, int64_t s) {
        const double v = quotient(i, s) + params.zero[static_cast<size_t>(s)];
        dst[i] = float_to_small_float(out, static_cast<float>(v), saturate_);
      });
      return;
    }
    const auto range = cpu::integer_range(out);  // captured below: not a structured binding
    const auto lo = range.first, hi = range.second;
    dispatch_storage(out, [&](auto tag) {
      using Q = typename decltype(tag)::type;
      Q* dst = y.data<Q>();
      for_each_quantized(layout, [&](int64_t i, int64_t s) {
        const double v = std::nearbyint(quotient(i, s)) + params.zero[static_cast<size_t>(s)];
        dst[i] = static_cast<Q>(
            std::isnan(v) ? static_cast<double>(lo)
                          : std::clamp(v, static_cast<double>(lo), static_cast<double>(hi)));
      });
    });
  }

 private:
  // The type x / y_scale is computed in: `precision` when given, else NumPy's promotion of the
  // two types (as the ONNX reference computes it).
  DType division_dtype(DType x, DType scale) const {
    if (precision_ != DType::Undefined) return precision_;
    if (x == DType::Int32 || scale == DType::Int32) return DType::Double;
    if (scale == DType::Float8E8M0 || x == scale) return x;
    return DType::Float;
  }

  int64_t axis_;
  int64_t block_size_;
  bool saturate_;
  DType output_dtype_;
  DType precision_;
};

class DequantizeLinear : public Kernel {
 public:
  explicit DequantizeLinear(const KernelInfo& info)
      : axis_(info.attr_int("axis", 1)),
        block_size_(info.attr_int("block_size", 0)),
        output_dtype_(static_cast<DType>(info.attr_int("output_dtype", 0))) {
    if (block_size_ < 0) info.fail("block_size must not be negative");
    if (output_dtype_ != DType::Undefined && output_dtype_ != DType::Float &&
        output_dtype_ != DType::Float16 && output_dtype_ != DType::BFloat16)
      info.fail(std::string("output_dtype must be float, float16 or bfloat16, got ") +
                dtype_name(output_dtype_));
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& scale = ctx.input(1);
    const DType xt = x.dtype();
    if (!cpu::is_quant_integer(xt) && xt != DType::Int32 && !is_small_float(xt))
      ctx.fail(std::string("cannot dequantize ") + dtype_name(xt));
    const DType st = scale.dtype();
    if (st != DType::Float && st != DType::Float16 && st != DType::BFloat16 &&
        st != DType::Float8E8M0)
      ctx.fail(std::string("x_scale must be float, float16, bfloat16 or float8e8m0, got ") +
               dtype_name(st));
    const DType out = output_dtype_ != DType::Undefined ? output_dtype_ : st;
    if (out == DType::Float8E8M0) ctx.fail("output_dtype is required with a float8e8m0 scale");
    const QuantLayout layout =
        cpu::resolve_quant_layout(x.shape(), scale.shape(), axis_, block_size_, ctx);
    const QuantParams params = read_params(ctx, xt, "x_zero_point");
    Tensor& y = ctx.output(0, out, x.shape());
    if (xt == DType::Int8 || xt == DType::UInt8 || xt == DType::Int16 || xt == DType::UInt16) {
      dispatch_storage(xt, [&](auto xtag) {
        using X = typename decltype(xtag)::type;
        dispatch_float(out, "DequantizeLinear", [&](auto otag) {
          using O = typename decltype(otag)::type;
          dequantize_float<X, O>(layout, x.data<X>(), params.scale, params.zero, y.data<O>());
        });
      });
      return;
    }
    const std::vector<double> xv = cpu::to_double_values(x, "x");
    dispatch_float(out, "DequantizeLinear", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* dst = y.data<T>();
      if (xt == DType::Int32) {
        // int32 is read as float first, as the reference converts it.
        for_each_quantized(layout, [&](int64_t i, int64_t s) {
          const double d =
              static_cast<float>(xv[static_cast<size_t>(i)]) - params.zero[static_cast<size_t>(s)];
          dst[i] = T(static_cast<float>(d * params.scale[static_cast<size_t>(s)]));
        });
        return;
      }
      // Differences of quantized values are exact in float; the product is rounded once.
      for_each_quantized(layout, [&](int64_t i, int64_t s) {
        const float d = static_cast<float>(xv[static_cast<size_t>(i)]) -
                        static_cast<float>(params.zero[static_cast<size_t>(s)]);
        dst[i] = T(d * static_cast<float>(params.scale[static_cast<size_t>(s)]));
      });
    });
  }

 private:
  int64_t axis_;
  int64_t block_size_;
  DType output_dtype_;
};

}  // namespace

GRAFT_CPU_KERNELS(quantize_linear) {
  reg.add({"",
           "QuantizeLinear",
           10,
           1 << 30,
           {DType::Float, DType::Float16, DType::BFloat16, DType::Int32},
           0,
           make<QuantizeLinear>});
  reg.add({"",
           "DequantizeLinear",
           10,
           1 << 30,
           {DType::Int8, DType::UInt8, DType::Int16, DType::UInt16, DType::Int32, DType::Int4,
            DType::UInt4, DType::Int2, DType::UInt2, DType::Float8E4M3FN, DType::Float8E4M3FNUZ,
            DType::Float8E5M2, DType::Float8E5M2FNUZ, DType::Float4E2M1},
           0,
           make<DequantizeLinear>});
}

}  // namespace graft
