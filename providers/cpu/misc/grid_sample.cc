// GridSample: samples X [N, C, d1..dr] at the normalized positions of grid [N, D1..Dr, r]
// (last grid axis in reverse dim order: x, y, z), with nearest, linear or cubic interpolation
// and zeros, border or reflection padding, in any number of spatial dims. Interpolation is
// separable, so each output point gathers 1, 2 or 4 taps per dim.
#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

enum class Mode { Nearest, Linear, Cubic };
enum class Padding { Zeros, Border, Reflection };

// Reflects `x` by the borders until it lies within [lo, hi].
template <typename A>
A reflect(A x, A lo, A hi) {
  const A range = hi - lo;
  if (range <= 0) return lo;
  if (x < lo) {
    const A dx = lo - x;
    const auto n = static_cast<int64_t>(dx / range);
    const A r = dx - static_cast<A>(n) * range;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const A dx = x - hi;
    const auto n = static_cast<int64_t>(dx / range);
    const A r = dx - static_cast<A>(n) * range;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

template <typename A>
void cubic_coeffs(A t, A* c) {
  constexpr A a = A(-0.75);
  const A x0 = t + 1, x1 = t, x2 = 1 - t, x3 = 2 - t;
  c[0] = ((a * x0 - 5 * a) * x0 + 8 * a) * x0 - 4 * a;
  c[1] = ((a + 2) * x1 - (a + 3)) * x1 * x1 + 1;
  c[2] = ((a + 2) * x2 - (a + 3)) * x2 * x2 + 1;
  c[3] = ((a * x3 - 5 * a) * x3 + 8 * a) * x3 - 4 * a;
}

class GridSample final : public Kernel {
 public:
  explicit GridSample(const KernelInfo& info)
      : align_corners_(info.attr_int("align_corners", 0) != 0) {
    const std::string mode =
        info.attr_string("mode", info.since_version() < 20 ? "bilinear" : "linear");
    if (mode == "nearest") {
      mode_ = Mode::Nearest;
    } else if (mode == "linear" || mode == "bilinear") {
      mode_ = Mode::Linear;
    } else if (mode == "cubic" || mode == "bicubic") {
      mode_ = Mode::Cubic;
    } else {
      info.fail("unknown mode '" + mode + "'");
    }
    const std::string padding = info.attr_string("padding_mode", "zeros");
    if (padding == "zeros") {
      padding_ = Padding::Zeros;
    } else if (padding == "border") {
      padding_ = Padding::Border;
    } else if (padding == "reflection") {
      padding_ = Padding::Reflection;
    } else {
      info.fail("unknown padding_mode '" + padding + "'");
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& grid = ctx.input(1);
    const int64_t r = x.rank() - 2;
    if (r < 1) ctx.fail("X must have rank 3 or more, got " + shape_to_string(x.shape()));
    if (grid.rank() != r + 2 || grid.dim(0) != x.dim(0) || grid.dim(r + 1) != r) {
      ctx.fail("grid shape " + shape_to_string(grid.shape()) + " does not match X " +
               shape_to_string(x.shape()) + "; expected [N, D1..Dr, r]");
    }
    Shape out_shape = {x.dim(0), x.dim(1)};
    for (int64_t d = 1; d <= r; ++d) out_shape.push_back(grid.dim(d));
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    dispatch_float(grid.dtype(), "GridSample grid", [&](auto grid_tag) {
      using G = typename decltype(grid_tag)::type;
      dispatch_number(x.dtype(), "GridSample", [&](auto tag) {
        using T = typename decltype(tag)::type;
        run<T, G>(x, grid, y, r);
      });
    });
  }

 private:
  template <typename T, typename G>
  void run(const Tensor& x, const Tensor& grid, Tensor& y, int64_t r) const {
    using A =
        std::conditional_t<std::is_same_v<T, double> || std::is_same_v<G, double>, double, float>;
    const auto rank = static_cast<size_t>(r);
    const int64_t batch = x.dim(0), channels = x.dim(1);
    std::vector<int64_t> dims(rank);
    for (size_t d = 0; d < rank; ++d) dims[d] = x.dim(static_cast<int64_t>(d + 2));
    const std::vector<int64_t> in_strides = tensor_ops::contiguous_strides(dims);
    const int64_t in_plane = shape_size(Shape(dims.begin(), dims.end()));
    const int64_t points = y.size() / std::max<int64_t>(1, batch * channels);
    const T* src = x.data<T>();
    const G* gp = grid.data<G>();
    T* dst = y.data<T>();
#pragma omp parallel if (y.size() > (1 << 14) && batch * points > 1)
    {
      // Per-thread scratch: the taps of each dim and an odometer over their combinations.
      std::vector<std::array<int64_t, 4>> tap_at(rank);
      std::vector<std::array<A, 4>> tap_w(rank);
      std::vector<int> taps(rank), k(rank);
#pragma omp for
      for (int64_t task = 0; task < batch * points; ++task) {
        const int64_t n = task / points, p = task % points;
        const G* coords = gp + task * r;
        bool zero = false;
        for (size_t d = 0; d < rank && !zero; ++d) {
          const int64_t len = dims[d];
          const A lo = align_corners_ ? A(0) : A(-0.5);
          const A hi = align_corners_ ? A(len - 1) : A(len) - A(0.5);
          const A g = static_cast<A>(coords[rank - 1 - d]);
          A v = align_corners_ ? (g + 1) / 2 * A(len - 1) : ((g + 1) * A(len) - 1) / 2;
          if (mode_ == Mode::Nearest) v = std::nearbyint(v);
          if (v < lo || v > hi) {
            if (padding_ == Padding::Border) {
              v = std::min(std::max(v, A(0)), A(len - 1));
            } else if (padding_ == Padding::Reflection) {
              v = reflect(v, lo, hi);
            }
          }
          // Resolves an integer position to an element index, or -1 for a zero pixel.
          auto resolve = [&](int64_t i) -> int64_t {
            if (i >= 0 && i < len) return i;
            if (padding_ == Padding::Zeros || len == 0) return -1;
            if (padding_ == Padding::Border) return i < 0 ? 0 : len - 1;
            const auto j = static_cast<int64_t>(reflect(static_cast<A>(i), lo, hi));
            return std::min(std::max<int64_t>(j, 0), len - 1);
          };
          if (std::isnan(v)) {
            zero = padding_ == Padding::Zeros;
            v = 0;
          }
          // Far outside, every tap reads padding; clamping keeps the integer casts defined.
          v = std::min(std::max(v, lo - 8), hi + 8);
          if (mode_ == Mode::Nearest) {
            taps[d] = 1;
            tap_at[d][0] = resolve(static_cast<int64_t>(v));
            tap_w[d][0] = 1;
          } else {
            const A f = std::floor(v);
            const auto i0 = static_cast<int64_t>(f);
            const A t = v - f;
            if (mode_ == Mode::Linear) {
              taps[d] = 2;
              tap_at[d] = {resolve(i0), resolve(i0 + 1), 0, 0};
              tap_w[d] = {1 - t, t, 0, 0};
            } else {
              taps[d] = 4;
              tap_at[d] = {resolve(i0 - 1), resolve(i0), resolve(i0 + 1), resolve(i0 + 2)};
              cubic_coeffs(t, tap_w[d].data());
            }
          }
        }
        for (int64_t c = 0; c < channels; ++c) {
          const T* plane = src + (n * channels + c) * in_plane;
          A sum = 0;
          if (!zero) {
            std::fill(k.begin(), k.end(), 0);
            while (true) {
              int64_t at = 0;
              A w = 1;
              for (size_t d = 0; d < rank; ++d) {
                const int64_t i = tap_at[d][static_cast<size_t>(k[d])];
                if (i < 0) {
                  at = -1;
                  break;
                }
                at += i * in_strides[d];
                w *= tap_w[d][static_cast<size_t>(k[d])];
              }
              if (at >= 0) sum += w * static_cast<A>(plane[at]);
              size_t d = rank;
              while (d > 0 && ++k[d - 1] == taps[d - 1]) k[--d] = 0;
              if (d == 0) break;
            }
          }
          if constexpr (std::is_integral_v<T>) {
            dst[(n * channels + c) * points + p] = static_cast<T>(static_cast<int64_t>(sum));
          } else {
            dst[(n * channels + c) * points + p] = T(sum);
          }
        }
      }
    }
  }

  bool align_corners_;
  Mode mode_ = Mode::Linear;
  Padding padding_ = Padding::Zeros;
};

}  // namespace

GRAFT_CPU_KERNELS(misc_grid_sample) {
  reg.add({"", "GridSample", 16, 1 << 30, {}, 0, make<GridSample>});
}

}  // namespace graft
