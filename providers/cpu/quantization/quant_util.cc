#include "providers/cpu/quantization/quant_util.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "providers/cpu/linalg/gemm_util.h"

namespace graft::cpu {

bool is_quant_integer(DType dtype) {
  switch (dtype) {
    case DType::Int8:
    case DType::UInt8:
    case DType::Int16:
    case DType::UInt16:
    case DType::Int4:
    case DType::UInt4:
    case DType::Int2:
    case DType::UInt2:
      return true;
    default:
      return false;
  }
}

std::pair<int64_t, int64_t> integer_range(DType dtype) {
  switch (dtype) {
    case DType::Int8:
      return {-128, 127};
    case DType::UInt8:
      return {0, 255};
    case DType::Int16:
      return {-32768, 32767};
    case DType::UInt16:
      return {0, 65535};
    case DType::Int32:
      return {INT32_MIN, INT32_MAX};
    case DType::Int4:
      return {-8, 7};
    case DType::UInt4:
      return {0, 15};
    case DType::Int2:
      return {-2, 1};
    case DType::UInt2:
      return {0, 3};
    default:
      throw_unsupported_dtype(dtype, "integer range");
  }
}

std::vector<double> to_double_values(const Tensor& t, const char* what) {
  std::vector<double> out(static_cast<size_t>(t.size()));
  const DType dtype = t.dtype();
  if (dtype_is_sub_byte(dtype) && dtype != DType::Float4E2M1) {
    // Only the low bits count: NumPy's ml_dtypes leaves the high bits of a negative value
    // clear, graft's kernels sign-extend it.
    const int bits = dtype == DType::Int4 || dtype == DType::UInt4 ? 4 : 2;
    const bool is_signed = dtype == DType::Int4 || dtype == DType::Int2;
    const uint8_t* src = t.data<uint8_t>();
    for (size_t i = 0; i < out.size(); ++i) {
      const int low = src[i] & ((1 << bits) - 1);
      out[i] = is_signed && low >= (1 << (bits - 1)) ? low - (1 << bits) : low;
    }
  } else if (dtype_is_float8(dtype)) {
    const uint8_t* src = t.data<uint8_t>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = small_float_to_float(dtype, src[i]);
  } else {
    dispatch_number(dtype, what, [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = t.data<T>();
      for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(src[i]);
    });
  }
  return out;
}

double round_to_dtype(DType dtype, double value) {
  switch (dtype) {
    case DType::Float:
      return static_cast<float>(value);
    case DType::Float16:
      return static_cast<float>(Float16(static_cast<float>(value)));
    case DType::BFloat16:
      return static_cast<float>(BFloat16(static_cast<float>(value)));
    default:
      return value;
  }
}

QuantLayout resolve_quant_layout(const Shape& x_shape, const Shape& scale_shape, int64_t axis,
                                 int64_t block_size, const KernelContext& ctx) {
  QuantLayout layout;
  if (shape_size(scale_shape) == 1) {
    layout.dim = shape_size(x_shape);
    return layout;
  }
  const int64_t rank = static_cast<int64_t>(x_shape.size());
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    ctx.fail("axis " + std::to_string(axis) + " is out of range for x of shape " +
             shape_to_string(x_shape));
  for (int64_t d = 0; d < a; ++d) layout.outer *= x_shape[static_cast<size_t>(d)];
  layout.dim = x_shape[static_cast<size_t>(a)];
  for (int64_t d = a + 1; d < rank; ++d) layout.inner *= x_shape[static_cast<size_t>(d)];
  if (block_size <= 0) {
    if (scale_shape.size() != 1 || scale_shape[0] != layout.dim)
      ctx.fail("scale of shape " + shape_to_string(scale_shape) +
               " must be a scalar or a 1-D tensor of " + std::to_string(layout.dim) +
               " elements (axis " + std::to_string(axis) + " of x " + shape_to_string(x_shape) +
               ")");
    layout.kind = QuantLayout::Kind::PerAxis;
    return layout;
  }
  Shape expected = x_shape;
  expected[static_cast<size_t>(a)] = (layout.dim + block_size - 1) / block_size;
  if (scale_shape != expected)
    ctx.fail("blocked scale of shape " + shape_to_string(scale_shape) + " must be " +
             shape_to_string(expected) + " for x " + shape_to_string(x_shape) + ", axis " +
             std::to_string(axis) + " and block_size " + std::to_string(block_size));
  layout.kind = QuantLayout::Kind::Blocked;
  layout.block = block_size;
  return layout;
}

void int32_gemm(int64_t m, int64_t n, int64_t k, const int32_t* a, const int32_t* b, int32_t* c) {
  if (m == 0 || n == 0) return;
  int64_t max_a = 0, max_b = 0;
  for (int64_t i = 0; i < m * k; ++i) max_a = std::max(max_a, std::abs(int64_t{a[i]}));
  for (int64_t i = 0; i < k * n; ++i) max_b = std::max(max_b, std::abs(int64_t{b[i]}));
  if (static_cast<double>(max_a) * static_cast<double>(max_b) * static_cast<double>(k) <
      16777216.0) {
    // Every product and partial sum is an integer below 2^24, so float arithmetic is exact in
    // any summation order.
    std::vector<float> fa(a, a + m * k), fb(b, b + k * n), fc(static_cast<size_t>(m * n));
    sgemm(false, false, m, n, k, 1.0f, fa.data(), k, fb.data(), n, 0.0f, fc.data(), n);
    for (int64_t i = 0; i < m * n; ++i) c[i] = static_cast<int32_t>(fc[static_cast<size_t>(i)]);
    return;
  }
#pragma omp parallel for if (m * n * k > (1 << 18) && !omp_in_parallel())
  for (int64_t i = 0; i < m; ++i) {
    std::vector<uint32_t> row(static_cast<size_t>(n), 0);
    for (int64_t p = 0; p < k; ++p) {
      const uint32_t av = static_cast<uint32_t>(a[i * k + p]);
      const int32_t* brow = b + p * n;
      for (int64_t j = 0; j < n; ++j)
        row[static_cast<size_t>(j)] += av * static_cast<uint32_t>(brow[j]);
    }
    for (int64_t j = 0; j < n; ++j)
      c[i * n + j] = static_cast<int32_t>(row[static_cast<size_t>(j)]);
  }
}

Shape IntConvProblem::output_shape() const {
  Shape out = {batch, maps};
  out.insert(out.end(), g.out.begin(), g.out.end());
  return out;
}

IntConvProblem resolve_int_conv(const Tensor& x, const Tensor& w, const WindowAttrs& attrs,
                                int64_t group, const KernelContext& ctx) {
  const Shape in = spatial_dims(x, ctx);
  if (in.size() > kMaxSpatialDims) ctx.fail("too many spatial dims");
  if (w.rank() != x.rank())
    ctx.fail("w " + shape_to_string(w.shape()) + " must have the rank of x " +
             shape_to_string(x.shape()));
  if (group <= 0) ctx.fail("group must be positive");
  IntConvProblem p{x.dim(0), x.dim(1), w.dim(0), group, {}};
  if (p.channels % group != 0 || p.maps % group != 0 || w.dim(1) * group != p.channels)
    ctx.fail("x has " + std::to_string(p.channels) + " channels and w " +
             shape_to_string(w.shape()) + ", which does not fit group " + std::to_string(group));
  const Shape w_kernel(w.shape().begin() + 2, w.shape().end());
  if (!attrs.kernel_shape.empty() && attrs.kernel_shape != w_kernel)
    ctx.fail("kernel_shape does not match w's spatial dims");
  p.g = attrs.resolve(in, w_kernel, ctx);
  return p;
}

void int32_conv(const IntConvProblem& p, const int32_t* x, const int32_t* w, int32_t* y) {
  const WindowGeometry& g = p.g;
  const int64_t cg = p.channels / p.group, mg = p.maps / p.group;
  const int64_t kernel_size = shape_size(g.kernel), in_size = shape_size(g.in);
  const int64_t out_size = shape_size(g.out), depth = cg * kernel_size;
  bool pointwise = kernel_size == 1;
  for (size_t i = 0; i < g.rank(); ++i)
    pointwise = pointwise && g.strides[i] == 1 && g.pads[i] == 0 && g.pads[g.rank() + i] == 0;
  std::vector<int32_t> col(pointwise ? 0 : static_cast<size_t>(depth * out_size));
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t gi = 0; gi < p.group; ++gi) {
      const int32_t* xg = x + (n * p.channels + gi * cg) * in_size;
      const int32_t* cols = xg;
      if (!pointwise) {
        im2col(xg, cg, g, col.data());
        cols = col.data();
      }
      int32_gemm(mg, out_size, depth, w + gi * mg * depth, cols,
                 y + (n * p.maps + gi * mg) * out_size);
    }
  }
}

std::vector<int32_t> widen_8bit(const Tensor& t, const std::vector<int32_t>& zero_point,
                                const char* what, const KernelContext& ctx) {
  if (t.dtype() != DType::UInt8 && t.dtype() != DType::Int8)
    ctx.fail(std::string(what) + " must be int8 or uint8, got " + dtype_name(t.dtype()));
  const size_t count = static_cast<size_t>(t.size());
  std::vector<int32_t> out(count);
  if (t.dtype() == DType::UInt8) {
    const uint8_t* src = t.data<uint8_t>();
    for (size_t i = 0; i < count; ++i) out[i] = src[i];
  } else {
    const int8_t* src = t.data<int8_t>();
    for (size_t i = 0; i < count; ++i) out[i] = src[i];
  }
  if (zero_point.size() == 1) {
    for (int32_t& v : out) v -= zero_point[0];
  } else if (!zero_point.empty()) {
    if (t.rank() == 0 || static_cast<int64_t>(zero_point.size()) != t.dim(0))
      ctx.fail(std::string(what) + "'s zero point has " + std::to_string(zero_point.size()) +
               " elements, expected 1 or " + (t.rank() > 0 ? std::to_string(t.dim(0)) : "1"));
    const size_t slice = count / zero_point.size();
    for (size_t i = 0; i < count; ++i) out[i] -= zero_point[i / slice];
  }
  return out;
}

std::vector<int32_t> zero_point_values(const KernelContext& ctx, int index, DType dtype,
                                       const char* what) {
  if (!ctx.has_input(index)) return {};
  const Tensor& zp = ctx.input(index);
  if (zp.dtype() != dtype)
    ctx.fail(std::string(what) + " must be " + dtype_name(dtype) + ", got " +
             dtype_name(zp.dtype()));
  if (zp.rank() > 1)
    ctx.fail(std::string(what) + " must be a scalar or 1-D, got " + shape_to_string(zp.shape()));
  const std::vector<double> values = to_double_values(zp, what);
  return std::vector<int32_t>(values.begin(), values.end());
}

}  // namespace graft::cpu
