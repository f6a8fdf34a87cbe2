// DeformConv over any number of spatial dims: each kernel tap samples the input at its regular
// position plus a learned offset (multilinear interpolation, zero outside the input), optionally
// scaled by a mask; the sampled columns then go through a GEMM per (image, group) as in Conv.
// float16/bfloat16 are computed in float.
#include <omp.h>

#include <cmath>
#include <string>

#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"

namespace graft {
namespace {

constexpr size_t kMaxDims = 8;

struct DeformProblem {
  int64_t batch, channels, maps, group, offset_group;
  Shape in, kernel, strides, dilations, pads, out;
};

// x at the fractional position `pos` (n dims): multilinear interpolation of the 2^n neighbours,
// those outside the input counting as zero.
template <typename T>
T interpolate(const T* x, const Shape& in, const T* pos) {
  const size_t n = in.size();
  int64_t base[kMaxDims];
  T frac[kMaxDims];
  for (size_t d = 0; d < n; ++d) {
    // Also rejects NaN.
    if (!(pos[d] > T(-1) && pos[d] < static_cast<T>(in[d]))) return T(0);
    const T fl = std::floor(pos[d]);
    base[d] = static_cast<int64_t>(fl);
    frac[d] = pos[d] - fl;
  }
  T sum = T(0);
  for (uint32_t corner = 0; corner < (1u << n); ++corner) {
    T weight = T(1);
    int64_t index = 0;
    bool inside = true;
    for (size_t d = 0; d < n && inside; ++d) {
      const uint32_t bit = (corner >> (n - 1 - d)) & 1u;
      const int64_t c = base[d] + bit;
      inside = c >= 0 && c < in[d];
      weight *= bit ? frac[d] : T(1) - frac[d];
      index = index * in[d] + c;
    }
    if (inside && weight != T(0)) sum += weight * x[index];
  }
  return sum;
}

template <typename T>
void deform_conv(const DeformProblem& p, const T* x, const T* w, const T* offset, const T* mask,
                 const T* bias, T* y) {
  const size_t n = p.in.size();
  const int64_t cg = p.channels / p.group, mg = p.maps / p.group;
  const int64_t channels_per_offset = p.channels / p.offset_group;
  const int64_t kernel_size = shape_size(p.kernel), out_size = shape_size(p.out);
  const int64_t in_size = shape_size(p.in), depth = cg * kernel_size;
  std::vector<T> col(static_cast<size_t>(depth * out_size));
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t gi = 0; gi < p.group; ++gi) {
#pragma omp parallel for if (depth * out_size > (1 << 14))
      for (int64_t row = 0; row < depth; ++row) {
        const int64_t channel = gi * cg + row / kernel_size, k = row % kernel_size;
        const int64_t og = channel / channels_per_offset;
        const T* xc = x + (b * p.channels + channel) * in_size;
        const int64_t tap = (b * p.offset_group + og) * kernel_size + k;
        const T* off = offset + tap * static_cast<int64_t>(n) * out_size;
        const T* msk = mask != nullptr ? mask + tap * out_size : nullptr;
        // The tap's position inside the (dilated) kernel window.
        T kpos[kMaxDims];
        for (size_t d = n, rest = static_cast<size_t>(k); d-- > 0;) {
          kpos[d] = static_cast<T>(static_cast<int64_t>(rest % static_cast<size_t>(p.kernel[d])) *
                                       p.dilations[d] -
                                   p.pads[d]);
          rest /= static_cast<size_t>(p.kernel[d]);
        }
        T* dst = col.data() + row * out_size;
        for (int64_t o = 0; o < out_size; ++o) {
          T pos[kMaxDims];
          for (int64_t d = static_cast<int64_t>(n) - 1, rest = o; d >= 0; --d) {
            const int64_t od = rest % p.out[static_cast<size_t>(d)];
            rest /= p.out[static_cast<size_t>(d)];
            pos[d] = static_cast<T>(od * p.strides[static_cast<size_t>(d)]) + kpos[d] +
                     off[d * out_size + o];
          }
          const T v = interpolate(xc, p.in, pos);
          dst[o] = msk != nullptr ? v * msk[o] : v;
        }
      }
      T* yg = y + (b * p.maps + gi * mg) * out_size;
      if (bias != nullptr)
        for (int64_t m = 0; m < mg; ++m)
          std::fill_n(yg + m * out_size, out_size, bias[gi * mg + m]);
      cpu::gemm<T>(false, false, mg, out_size, depth, w + gi * mg * depth, col.data(), yg,
                   bias != nullptr);
    }
  }
}

class DeformConv : public Kernel {
 public:
  explicit DeformConv(const KernelInfo& info)
      : group_(info.attr_int("group", 1)),
        offset_group_(info.attr_int("offset_group", 1)),
        kernel_shape_(info.attr_ints("kernel_shape")),
        strides_(info.attr_ints("strides")),
        dilations_(info.attr_ints("dilations")),
        pads_(info.attr_ints("pads")) {
    if (group_ <= 0 || offset_group_ <= 0) info.fail("group and offset_group must be positive");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    const Tensor& offset = ctx.input(2);
    const DeformProblem p = resolve(ctx);
    const Tensor* bias = ctx.has_input(3) ? &ctx.input(3) : nullptr;
    const Tensor* mask = ctx.has_input(4) ? &ctx.input(4) : nullptr;
    for (const Tensor* t : {&w, &offset, bias, mask})
      if (t != nullptr && t->dtype() != x.dtype()) ctx.fail("all inputs must have X's dtype");
    if (bias != nullptr && (bias->rank() != 1 || bias->dim(0) != p.maps))
      ctx.fail("B must be a 1-D tensor of " + std::to_string(p.maps) + " elements");
    const int64_t taps = p.offset_group * shape_size(p.kernel);
    Shape expected = {p.batch, taps * static_cast<int64_t>(p.in.size())};
    expected.insert(expected.end(), p.out.begin(), p.out.end());
    if (offset.shape() != expected)
      ctx.fail("offset " + shape_to_string(offset.shape()) + " must have shape " +
               shape_to_string(expected));
    expected[1] = taps;
    if (mask != nullptr && mask->shape() != expected)
      ctx.fail("mask " + shape_to_string(mask->shape()) + " must have shape " +
               shape_to_string(expected));
    Shape out_shape = {p.batch, p.maps};
    out_shape.insert(out_shape.end(), p.out.begin(), p.out.end());
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    if (y.size() == 0) return;

    if (x.dtype() == DType::Double) {
      deform_conv<double>(p, x.data<double>(), w.data<double>(), offset.data<double>(),
                          mask ? mask->data<double>() : nullptr,
                          bias ? bias->data<double>() : nullptr, y.data<double>());
      return;
    }
    if (!dtype_is_float(x.dtype()))
      ctx.fail(std::string("unsupported dtype ") + dtype_name(x.dtype()));
    auto as_float = [](const Tensor* t) { return t ? cpu::to_float_tensor(*t) : Tensor(); };
    const Tensor xf = as_float(&x), wf = as_float(&w), of = as_float(&offset);
    const Tensor mf = as_float(mask), bf = as_float(bias);
    Tensor yf = x.dtype() == DType::Float ? y : Tensor(DType::Float, out_shape);
    deform_conv<float>(p, xf.data<float>(), wf.data<float>(), of.data<float>(),
                       mask ? mf.data<float>() : nullptr, bias ? bf.data<float>() : nullptr,
                       yf.data<float>());
    if (x.dtype() != DType::Float) cpu::copy_from_float(yf, y);
  }

 private:
  DeformProblem resolve(const KernelContext& ctx) const {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    if (x.rank() < 3) ctx.fail("X must have rank 3 or more, got " + shape_to_string(x.shape()));
    const size_t n = static_cast<size_t>(x.rank() - 2);
    if (n > kMaxDims) ctx.fail("too many spatial dims");
    if (w.rank() != x.rank())
      ctx.fail("W " + shape_to_string(w.shape()) + " must have the rank of X " +
               shape_to_string(x.shape()));
    DeformProblem p{x.dim(0), x.dim(1), w.dim(0), group_, offset_group_, {}, {}, {}, {}, {}, {}};
    if (p.channels % group_ != 0 || p.maps % group_ != 0 || w.dim(1) * group_ != p.channels)
      ctx.fail("X has " + std::to_string(p.channels) + " channels and W " +
               shape_to_string(w.shape()) + ", which does not fit group " + std::to_string(group_));
    if (p.channels % offset_group_ != 0)
      ctx.fail("X's " + std::to_string(p.channels) +
               " channels are not divisible by offset_group " + std::to_string(offset_group_));
    p.in.assign(x.shape().begin() + 2, x.shape().end());
    p.kernel.assign(w.shape().begin() + 2, w.shape().end());
    if (!kernel_shape_.empty() && kernel_shape_ != p.kernel)
      ctx.fail("kernel_shape does not match W's spatial dims");
    p.strides = strides_.empty() ? Shape(n, 1) : strides_;
    p.dilations = dilations_.empty() ? Shape(n, 1) : dilations_;
    p.pads = pads_.empty() ? Shape(2 * n, 0) : pads_;
    if (p.strides.size() != n || p.dilations.size() != n || p.pads.size() != 2 * n)
      ctx.fail("strides, dilations or pads do not match the " + std::to_string(n) +
               " spatial dims of X");
    p.out.assign(n, 0);
    for (size_t d = 0; d < n; ++d) {
      if (p.kernel[d] <= 0 || p.strides[d] <= 0 || p.dilations[d] <= 0 || p.pads[d] < 0 ||
          p.pads[n + d] < 0)
        ctx.fail("kernel, strides and dilations must be positive and pads not negative");
      const int64_t span =
          p.in[d] + p.pads[d] + p.pads[n + d] - ((p.kernel[d] - 1) * p.dilations[d] + 1);
      if (span < 0) ctx.fail("the kernel is larger than the padded input");
      p.out[d] = span / p.strides[d] + 1;
    }
    return p;
  }

  int64_t group_, offset_group_;
  Shape kernel_shape_, strides_, dilations_, pads_;
};

}  // namespace

GRAFT_CPU_KERNELS(deform_conv) {
  reg.add({"",
           "DeformConv",
           19,
           1 << 30,
           {DType::Float, DType::Double, DType::Float16, DType::BFloat16},
           0,
           make<DeformConv>});
}

}  // namespace graft
