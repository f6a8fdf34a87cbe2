// MaxPool (with Indices), AveragePool and LpPool over 1 to 3 spatial dims. Inputs of fewer dims
// are seen as 3-D with leading dims of 1, so one loop nest serves all.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"
#include "providers/cpu/nn/conv_util.h"

namespace graft {
namespace {

enum class PoolKind { Max, Average, Lp };

struct Geometry3 {
  int64_t in[3], kernel[3], stride[3], dilation[3], pad_begin[3], pad_end[3], out[3];
};

Geometry3 to_3d(const WindowGeometry& g) {
  Geometry3 r;
  const size_t lead = 3 - g.rank();
  for (size_t i = 0; i < 3; ++i) {
    const bool real = i >= lead;
    const size_t j = i - lead;
    r.in[i] = real ? g.in[j] : 1;
    r.kernel[i] = real ? g.kernel[j] : 1;
    r.stride[i] = real ? g.strides[j] : 1;
    r.dilation[i] = real ? g.dilations[j] : 1;
    r.pad_begin[i] = real ? g.pads[j] : 0;
    r.pad_end[i] = real ? g.pads[g.rank() + j] : 0;
    r.out[i] = real ? g.out[j] : 1;
  }
  return r;
}

int64_t ceil_div(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

// The window of output position `o` along dim `i`: first input position, the range [lo, hi) of
// kernel taps that land inside the input, and the taps that land inside the padded input.
struct Span {
  int64_t start, lo, hi, padded;
};

Span span_of(const Geometry3& g, int i, int64_t o) {
  Span s;
  s.start = o * g.stride[i] - g.pad_begin[i];
  s.lo = s.start >= 0 ? 0 : ceil_div(-s.start, g.dilation[i]);
  s.hi = std::min(g.kernel[i], ceil_div(g.in[i] - s.start, g.dilation[i]));
  s.padded = std::min(g.kernel[i], ceil_div(g.in[i] + g.pad_end[i] - s.start, g.dilation[i]));
  return s;
}

struct PoolParams {
  PoolKind kind;
  bool count_include_pad;
  int64_t p;          // LpPool's exponent
  bool column_major;  // MaxPool storage_order
};

// MaxPool with the Indices output: one window at a time, keeping the first maximum's position.
template <typename T>
void run_max_with_indices(const PoolParams& pp, const Geometry3& g,
                          const std::vector<Span> (&spans)[3], int64_t planes, const T* x, T* y,
                          int64_t* indices) {
  const int64_t in_size = g.in[0] * g.in[1] * g.in[2];
  const int64_t out_size = g.out[0] * g.out[1] * g.out[2];
  // Position of an in-plane offset in column-major order (storage_order = 1).
  auto column_major = [&g](int64_t offset) {
    const int64_t w = offset % g.in[2], h = (offset / g.in[2]) % g.in[1];
    const int64_t d = offset / (g.in[2] * g.in[1]);
    return d + (h + w * g.in[1]) * g.in[0];
  };
#pragma omp parallel for if (planes * out_size > 4096 && !omp_in_parallel())
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* xp = x + plane * in_size;
    int64_t o = plane * out_size;
    for (const Span& sd : spans[0]) {
      for (const Span& sh : spans[1]) {
        for (const Span& sw : spans[2]) {
          T best = T();
          int64_t best_at = -1;
          for (int64_t kd = sd.lo; kd < sd.hi; ++kd) {
            const int64_t d = sd.start + kd * g.dilation[0];
            for (int64_t kh = sh.lo; kh < sh.hi; ++kh) {
              const int64_t row = (d * g.in[1] + sh.start + kh * g.dilation[1]) * g.in[2];
              for (int64_t kw = sw.lo; kw < sw.hi; ++kw) {
                const int64_t at = row + sw.start + kw * g.dilation[2];
                if (best_at < 0 || xp[at] > best) {
                  best = xp[at];
                  best_at = at;
                }
              }
            }
          }
          y[o] = best;
          indices[o] = best_at < 0
                           ? -1
                           : plane * in_size + (pp.column_major ? column_major(best_at) : best_at);
          ++o;
        }
      }
    }
  }
}

// Max, average and Lp pooling a line at a time: for each output line (fixed d, h) every kernel
// tap is applied to the whole line, so the innermost loop runs over contiguous outputs.
template <typename T>
void run_pool_lines(const PoolParams& pp, const Geometry3& g, const std::vector<Span> (&spans)[3],
                    int64_t planes, const T* x, T* y) {
  using Acc = std::conditional_t<std::is_integral_v<T>, T, cpu::AccumulateType<T>>;
  const int64_t in_size = g.in[0] * g.in[1] * g.in[2];
  const int64_t out_w = g.out[2], stride = g.stride[2];
  const int64_t out_size = g.out[0] * g.out[1] * out_w;
  Acc init = Acc(0);
  if (pp.kind == PoolKind::Max) {
    init = std::numeric_limits<Acc>::lowest();
    if constexpr (std::numeric_limits<Acc>::has_infinity)
      init = -std::numeric_limits<Acc>::infinity();
  }
  // Valid output range [lo, hi) along the last dim for each kernel tap.
  std::vector<int64_t> tap_lo(static_cast<size_t>(g.kernel[2])), tap_hi(tap_lo.size());
  for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
    const int64_t offset = kw * g.dilation[2] - g.pad_begin[2];
    const int64_t lo = offset >= 0 ? 0 : ceil_div(-offset, stride);
    tap_lo[static_cast<size_t>(kw)] = std::min(lo, out_w);
    tap_hi[static_cast<size_t>(kw)] =
        std::clamp(ceil_div(g.in[2] - offset, stride), std::min(lo, out_w), out_w);
  }
  const Acc p = static_cast<Acc>(pp.p);
#pragma omp parallel for if (planes * out_size > 4096 && !omp_in_parallel())
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* xp = x + plane * in_size;
    T* yp = y + plane * out_size;
    std::vector<Acc> acc(static_cast<size_t>(out_w));
    for (const Span& sd : spans[0]) {
      for (const Span& sh : spans[1]) {
        std::fill(acc.begin(), acc.end(), init);
        for (int64_t kd = sd.lo; kd < sd.hi; ++kd) {
          const int64_t d = sd.start + kd * g.dilation[0];
          for (int64_t kh = sh.lo; kh < sh.hi; ++kh) {
            const T* row = xp + (d * g.in[1] + sh.start + kh * g.dilation[1]) * g.in[2];
            for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
              const int64_t offset = kw * g.dilation[2] - g.pad_begin[2];
              const int64_t lo = tap_lo[static_cast<size_t>(kw)];
              const int64_t hi = tap_hi[static_cast<size_t>(kw)];
              if (pp.kind == PoolKind::Max) {
                for (int64_t j = lo; j < hi; ++j) {
                  const Acc v = static_cast<Acc>(row[j * stride + offset]);
                  acc[static_cast<size_t>(j)] =
                      v > acc[static_cast<size_t>(j)] ? v : acc[static_cast<size_t>(j)];
                }
              } else if (pp.kind == PoolKind::Average || pp.p == 1) {
                const bool absolute = pp.kind == PoolKind::Lp;
                for (int64_t j = lo; j < hi; ++j) {
                  const Acc v = static_cast<Acc>(row[j * stride + offset]);
                  acc[static_cast<size_t>(j)] += absolute && v < Acc(0) ? -v : v;
                }
              } else if constexpr (!std::is_integral_v<T>) {
                for (int64_t j = lo; j < hi; ++j) {
                  const Acc v = static_cast<Acc>(row[j * stride + offset]);
                  acc[static_cast<size_t>(j)] += pp.p == 2 ? v * v : std::pow(std::abs(v), p);
                }
              }
            }
          }
        }
        const int64_t rows = (sd.hi - sd.lo) * (sh.hi - sh.lo);
        const int64_t padded_rows = sd.padded * sh.padded;
        for (int64_t j = 0; j < out_w; ++j) {
          const Span& sw = spans[2][static_cast<size_t>(j)];
          const Acc a = acc[static_cast<size_t>(j)];
          Acc v = a;
          if (pp.kind == PoolKind::Max) {
            if (rows == 0 || sw.hi <= sw.lo) v = Acc(0);
          } else if constexpr (!std::is_integral_v<T>) {
            if (pp.kind == PoolKind::Average) {
              const int64_t count =
                  pp.count_include_pad ? padded_rows * sw.padded : rows * (sw.hi - sw.lo);
              v = count > 0 ? a / static_cast<Acc>(count) : std::numeric_limits<Acc>::quiet_NaN();
            } else if (pp.p == 2) {
              v = std::sqrt(a);
            } else if (pp.p != 1) {
              v = std::pow(a, Acc(1) / p);
            }
          }
          yp[j] = static_cast<T>(v);
        }
        yp += out_w;
      }
    }
  }
}

template <typename T>
void run_pool(const PoolParams& pp, const Geometry3& g, int64_t planes, const T* x, T* y,
              int64_t* indices) {
  std::vector<Span> spans[3];
  for (int i = 0; i < 3; ++i)
    for (int64_t o = 0; o < g.out[i]; ++o) spans[i].push_back(span_of(g, i, o));
  if (indices != nullptr)
    run_max_with_indices(pp, g, spans, planes, x, y, indices);
  else
    run_pool_lines(pp, g, spans, planes, x, y);
}

class Pool : public Kernel {
 public:
  Pool(const KernelInfo& info, PoolKind kind) : attrs_(info) {
    params_.kind = kind;
    params_.count_include_pad = info.attr_int("count_include_pad", 0) != 0;
    params_.column_major = info.attr_int("storage_order", 0) != 0;
    params_.p = 2;
    if (kind == PoolKind::Lp)
      params_.p = info.since_version() == 1 ? static_cast<int64_t>(info.attr_float("p", 2.0f))
                                            : info.attr_int("p", 2);
    if (params_.p <= 0) info.fail("p must be positive");
    if (attrs_.kernel_shape.empty()) info.fail("attribute 'kernel_shape' is required");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Shape in = spatial_dims(x, ctx);
    if (in.size() > 3) ctx.fail("pooling supports 1 to 3 spatial dims");
    const WindowGeometry g = attrs_.resolve(in, attrs_.kernel_shape, ctx);
    Shape out_shape = {x.dim(0), x.dim(1)};
    out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    int64_t* indices = nullptr;
    if (ctx.num_outputs() > 1 && ctx.has_output(1)) {
      if (params_.kind != PoolKind::Max) ctx.fail("only MaxPool has an Indices output");
      indices = ctx.output(1, DType::Int64, out_shape).data<int64_t>();
    }
    const Geometry3 g3 = to_3d(g);
    const int64_t planes = x.dim(0) * x.dim(1);
    auto run = [&](auto tag) {
      using T = typename decltype(tag)::type;
      run_pool<T>(params_, g3, planes, x.data<T>(), y.data<T>(), indices);
    };
    switch (x.dtype()) {
      case DType::Int8:
      case DType::UInt8:
        if (params_.kind != PoolKind::Max) ctx.fail("integer inputs are supported by MaxPool only");
        dispatch_integer(x.dtype(), "MaxPool", run);
        break;
      default:
        dispatch_float(x.dtype(), "Pool", run);
    }
  }

 private:
  WindowAttrs attrs_;
  PoolParams params_;
};

KernelFactory pool_factory(PoolKind kind) {
  return [kind](const KernelInfo& info) { return std::make_unique<Pool>(info, kind); };
}

}  // namespace

GRAFT_CPU_KERNELS(pool) {
  std::vector<DType> max_types = kFloatTypes;
  max_types.insert(max_types.end(), {DType::Int8, DType::UInt8});
  reg.add({"", "MaxPool", 1, 1 << 30, max_types, 0, pool_factory(PoolKind::Max)});
  reg.add({"", "AveragePool", 1, 1 << 30, kFloatTypes, 0, pool_factory(PoolKind::Average)});
  reg.add({"", "LpPool", 1, 1 << 30, kFloatTypes, 0, pool_factory(PoolKind::Lp)});
}

}  // namespace graft
