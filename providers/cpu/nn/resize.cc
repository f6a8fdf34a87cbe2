// Resize (opsets 10, 11, 13, 18, 19). Coordinates map back to the input per
// coordinate_transformation_mode, exactly as the ONNX reference computes them. Nearest mode
// gathers elements of any type; linear and cubic interpolate one axis at a time in double
// (separable, like the reference), with antialias filters when downsampling and
// exclude_outside / extrapolation_value handling.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "exec/checked.h"
#include "exec/kernel.h"

namespace graft {
namespace {

enum class Mode { Nearest, Linear, Cubic };

struct AxisMap {
  int64_t in = 1, out = 1;
  double scale = 1.0;
  double roi_start = 0.0, roi_end = 1.0;
};

class Resize : public Kernel {
 public:
  explicit Resize(const KernelInfo& info)
      : since_(info.since_version()),
        coordinate_mode_(info.attr_string("coordinate_transformation_mode", "half_pixel")),
        nearest_mode_(info.attr_string("nearest_mode", "round_prefer_floor")),
        cubic_a_(info.attr_float("cubic_coeff_a", -0.75f)),
        exclude_outside_(info.attr_int("exclude_outside", 0) != 0),
        extrapolation_value_(info.attr_float("extrapolation_value", 0.0f)),
        antialias_(info.attr_int("antialias", 0) != 0),
        keep_aspect_(info.attr_string("keep_aspect_ratio_policy", "stretch")),
        axes_(info.attr_ints("axes")) {
    const std::string mode = info.attr_string("mode", "nearest");
    if (mode == "nearest")
      mode_ = Mode::Nearest;
    else if (mode == "linear")
      mode_ = Mode::Linear;
    else if (mode == "cubic" && since_ >= 11)
      mode_ = Mode::Cubic;
    else
      info.fail("unsupported mode '" + mode + "'");
    if (since_ < 11) coordinate_mode_ = "asymmetric";
    // Upsample (opset 7 to 9, since replaced by Resize): asymmetric coordinates, nearest by
    // flooring, scales from the attribute before opset 9.
    if (info.op_type() == "Upsample") {
      nearest_mode_ = "floor";
      for (float f : info.attr_floats("scales")) scales_attr_.push_back(f);
    }
    static const char* kModes[] = {
        "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",  "align_corners",
        "asymmetric", "tf_crop_and_resize",   "tf_half_pixel_for_nn"};
    bool known = false;
    for (const char* m : kModes) known = known || coordinate_mode_ == m;
    if (!known) info.fail("unsupported coordinate_transformation_mode '" + coordinate_mode_ + "'");
    if (nearest_mode_ != "round_prefer_floor" && nearest_mode_ != "round_prefer_ceil" &&
        nearest_mode_ != "floor" && nearest_mode_ != "ceil")
      info.fail("unsupported nearest_mode '" + nearest_mode_ + "'");
    if (keep_aspect_ != "stretch" && keep_aspect_ != "not_larger" && keep_aspect_ != "not_smaller")
      info.fail("unsupported keep_aspect_ratio_policy '" + keep_aspect_ + "'");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const std::vector<AxisMap> maps = axis_maps(ctx, x);
    Shape out_shape;
    for (const AxisMap& m : maps) out_shape.push_back(m.out);
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    if (y.size() == 0) return;
    if (x.size() == 0) ctx.fail("cannot resize an empty input to a non-empty output");
    if (mode_ == Mode::Nearest) {
      nearest(x, maps, y);
      return;
    }
    interpolate(x, maps, y);
  }

 private:
  // Output size, scale and roi per axis from the scales or sizes input.
  std::vector<AxisMap> axis_maps(const KernelContext& ctx, const Tensor& x) const {
    const int64_t rank = x.rank();
    std::vector<AxisMap> maps(static_cast<size_t>(rank));
    for (int64_t d = 0; d < rank; ++d)
      maps[static_cast<size_t>(d)].in = maps[static_cast<size_t>(d)].out = x.dim(d);
    std::vector<int64_t> axes = axes_;
    if (axes.empty())
      for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
    for (int64_t& a : axes) {
      if (a < -rank || a >= rank) ctx.fail("axis out of range");
      if (a < 0) a += rank;
    }
    const int scales_input = since_ < 11 ? 1 : 2;
    std::vector<double> scales, roi;
    std::vector<int64_t> sizes;
    if (!scales_attr_.empty()) {
      scales = scales_attr_;
    } else if (ctx.has_input(scales_input) && ctx.input(scales_input).size() > 0) {
      const Tensor& s = ctx.input(scales_input);
      for (int64_t i = 0; i < s.size(); ++i) scales.push_back(s.scalar_as_double(i));
    }
    if (since_ >= 11 && ctx.has_input(3) && ctx.input(3).size() > 0)
      sizes = ctx.input(3).to_int_vector();
    if (since_ >= 11 && ctx.has_input(1) && ctx.input(1).size() > 0) {
      const Tensor& r = ctx.input(1);
      for (int64_t i = 0; i < r.size(); ++i) roi.push_back(r.scalar_as_double(i));
    }
    if (scales.empty() == sizes.empty())
      ctx.fail("exactly one of 'scales' and 'sizes' must be given");
    const size_t count = axes.size();
    if ((!scales.empty() && scales.size() != count) || (!sizes.empty() && sizes.size() != count))
      ctx.fail("scales or sizes must have one value per resized axis (" + std::to_string(count) +
               ")");
    if (!roi.empty() && roi.size() != 2 * count && roi.size() != 2 * static_cast<size_t>(rank))
      ctx.fail("roi must have 2 values per resized axis");
    const bool roi_full =
        roi.size() == 2 * static_cast<size_t>(rank) && count != static_cast<size_t>(rank);
    for (size_t i = 0; i < count; ++i) {
      AxisMap& m = maps[static_cast<size_t>(axes[i])];
      if (!roi.empty()) {
        const size_t a = roi_full ? static_cast<size_t>(axes[i]) : i;
        const size_t n = roi.size() / 2;
        m.roi_start = roi[a];
        m.roi_end = roi[n + a];
      }
      if (!scales.empty()) {
        if (!(scales[i] > 0)) ctx.fail("scales must be positive");
        m.scale = scales[i];
        m.out = checked_to_int64(m.scale * static_cast<double>(m.in),
                                 ctx.describe() + ": axis " + std::to_string(axes[i]) + " scaled");
      } else {
        if (sizes[i] < 0) ctx.fail("sizes must not be negative");
        m.out = sizes[i];
        m.scale = m.in > 0 ? static_cast<double>(m.out) / static_cast<double>(m.in) : 1.0;
      }
    }
    if (!sizes.empty() && keep_aspect_ != "stretch") {
      double scale = keep_aspect_ == "not_larger" ? std::numeric_limits<double>::infinity() : 0.0;
      for (int64_t a : axes) {
        const double s = maps[static_cast<size_t>(a)].scale;
        scale = keep_aspect_ == "not_larger" ? std::min(scale, s) : std::max(scale, s);
      }
      for (int64_t a : axes) {
        AxisMap& m = maps[static_cast<size_t>(a)];
        m.scale = scale;
        m.out = checked_to_int64(scale * static_cast<double>(m.in) + 0.5,
                                 ctx.describe() + ": axis " + std::to_string(a) + " scaled");
      }
    }
    return maps;
  }

  // The input coordinate of output position y along one axis; sets `outside` for
  // tf_crop_and_resize positions beyond the input.
  double source_coordinate(const AxisMap& m, int64_t y, bool& outside) const {
    const double yd = static_cast<double>(y), in = static_cast<double>(m.in);
    const double width = m.scale * in;  // the output width before truncation, as the reference
    outside = false;
    const std::string& c = coordinate_mode_;
    if (c == "asymmetric") return yd / m.scale;
    if (c == "half_pixel") return (yd + 0.5) / m.scale - 0.5;
    if (c == "tf_half_pixel_for_nn") return (yd + 0.5) / m.scale;
    if (c == "pytorch_half_pixel") return width == 1.0 ? -0.5 : (yd + 0.5) / m.scale - 0.5;
    if (c == "align_corners") return width == 1.0 ? 0.0 : yd * (in - 1) / (width - 1);
    if (c == "half_pixel_symmetric") {
      const double adjustment = static_cast<double>(m.out) / width;
      const double offset = in / 2 * (1 - adjustment);
      return offset + (yd + 0.5) / m.scale - 0.5;
    }
    // tf_crop_and_resize
    double xo = width == 1.0 ? (m.roi_end - m.roi_start) * (in - 1) / 2
                             : yd * (m.roi_end - m.roi_start) * (in - 1) / (width - 1);
    xo += m.roi_start * (in - 1);
    outside = xo < 0 || xo > in - 1;
    return xo;
  }

  int64_t nearest_index(const AxisMap& m, double xo) const {
    const double fl = std::floor(xo);
    int64_t idx;
    if (xo == fl) {
      idx = static_cast<int64_t>(fl);
    } else if (since_ < 11) {
      // Opset 10 follows Upsample: round up when downsampling, down otherwise.
      idx = static_cast<int64_t>(m.scale < 1.0 ? std::ceil(xo) : fl);
    } else {
      const double r = xo - fl;
      bool up;
      if (nearest_mode_ == "round_prefer_floor")
        up = r > 0.5;
      else if (nearest_mode_ == "round_prefer_ceil")
        up = r >= 0.5;
      else
        up = nearest_mode_ == "ceil";
      idx = static_cast<int64_t>(fl) + (up ? 1 : 0);
    }
    return std::clamp<int64_t>(idx, 0, m.in - 1);
  }

  void nearest(const Tensor& x, const std::vector<AxisMap>& maps, Tensor& y) const {
    const size_t rank = maps.size();
    // Per axis: the input index of each output position, or -1 where it extrapolates.
    std::vector<std::vector<int64_t>> index(rank);
    std::vector<int64_t> in_strides(rank, 1);
    for (size_t d = rank; d-- > 1;) in_strides[d - 1] = in_strides[d] * maps[d].in;
    bool any_outside = false;
    for (size_t d = 0; d < rank; ++d) {
      for (int64_t o = 0; o < maps[d].out; ++o) {
        bool outside = false;
        const double xo = source_coordinate(maps[d], o, outside);
        index[d].push_back(outside ? -1 : nearest_index(maps[d], xo));
        any_outside = any_outside || outside;
      }
    }
    const int64_t count = y.size();
    auto gather = [&](auto tag, auto fill) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
      std::vector<int64_t> pos(rank, 0);
      for (int64_t o = 0; o < count; ++o) {
        int64_t offset = 0;
        bool outside = false;
        for (size_t d = 0; d < rank; ++d) {
          const int64_t i = index[d][static_cast<size_t>(pos[d])];
          outside = outside || i < 0;
          offset += i * in_strides[d];
        }
        dst[o] = outside ? fill(T()) : src[offset];
        for (size_t d = rank; d-- > 0;) {
          if (++pos[d] < maps[d].out) break;
          pos[d] = 0;
        }
      }
    };
    if (any_outside) {
      dispatch_numeric(x.dtype(), "Resize", [&](auto tag) {
        using T = typename decltype(tag)::type;
        gather(tag, [this](T) { return static_cast<T>(extrapolation_value_); });
      });
    } else {
      dispatch_by_size(x.dtype(), "Resize", [&](auto tag) {
        using T = typename decltype(tag)::type;
        gather(tag, [](T v) { return v; });
      });
    }
  }

  // Taps and weights of output position `o` along one axis for linear and cubic modes.
  void taps(const AxisMap& m, int64_t o, std::vector<int64_t>& idx, std::vector<double>& w,
            bool& outside) const {
    const double xo = source_coordinate(m, o, outside);
    // q + ratio = xo with ratio in (0, 1]: the reference prefers the pixel left of xo.
    const double q = std::ceil(xo) - 1;
    const double ratio = xo - q;
    const double s = antialias_ ? std::min(m.scale, 1.0) : 1.0;
    const bool linear = mode_ == Mode::Linear;
    const int64_t start = static_cast<int64_t>(std::floor((linear ? -1.0 : -2.0) / s)) + 1;
    const int64_t n = 2 - 2 * start;
    idx.resize(static_cast<size_t>(n));
    w.resize(static_cast<size_t>(n));
    const double a = cubic_a_;
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double t = std::abs((static_cast<double>(start + j) - ratio) * s);
      double c;
      if (linear)
        c = std::max(0.0, 1.0 - t);
      else if (t <= 1)
        c = ((a + 2) * t - (a + 3)) * t * t + 1;
      else if (t < 2)
        c = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
      else
        c = 0;
      const int64_t i = static_cast<int64_t>(q) + start + j;
      if (exclude_outside_ && (i < 0 || i >= m.in)) c = 0;
      idx[static_cast<size_t>(j)] = std::clamp<int64_t>(i, 0, m.in - 1);
      w[static_cast<size_t>(j)] = c;
      sum += c;
    }
    if (antialias_ || exclude_outside_) {
      if (sum == 0) sum = 1;
      for (double& c : w) c /= sum;
    }
  }

  void interpolate(const Tensor& x, const std::vector<AxisMap>& maps, Tensor& y) const {
    Shape shape = x.shape();
    std::vector<double> data(static_cast<size_t>(x.size()));
    dispatch_number(x.dtype(), "Resize", [&](auto tag) {
      using T = typename decltype(tag)::type;
      for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<double>(x.data<T>()[i]);
    });
    for (size_t axis = 0; axis < maps.size(); ++axis) {
      const AxisMap& m = maps[axis];
      const bool identity = m.out == m.in && std::abs(m.scale - 1.0) < 1e-9 &&
                            (coordinate_mode_ != "tf_crop_and_resize" ||
                             (std::abs(m.roi_start) < 1e-9 && std::abs(m.roi_end - 1.0) < 1e-9));
      if (identity) continue;
      int64_t outer = 1, inner = 1;
      for (size_t d = 0; d < axis; ++d) outer *= shape[d];
      for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
      std::vector<std::vector<int64_t>> idx(static_cast<size_t>(m.out));
      std::vector<std::vector<double>> w(static_cast<size_t>(m.out));
      std::vector<char> outside(static_cast<size_t>(m.out));
      for (int64_t o = 0; o < m.out; ++o) {
        bool out_of_range = false;
        taps(m, o, idx[static_cast<size_t>(o)], w[static_cast<size_t>(o)], out_of_range);
        outside[static_cast<size_t>(o)] = out_of_range;
      }
      std::vector<double> next(static_cast<size_t>(outer * m.out * inner));
#pragma omp parallel for if (outer * m.out * inner > (1 << 14) && !omp_in_parallel())
      for (int64_t b = 0; b < outer; ++b) {
        const double* src = data.data() + b * m.in * inner;
        double* dst = next.data() + b * m.out * inner;
        for (int64_t o = 0; o < m.out; ++o) {
          double* row = dst + o * inner;
          if (outside[static_cast<size_t>(o)]) {
            std::fill(row, row + inner, static_cast<double>(extrapolation_value_));
            continue;
          }
          std::fill(row, row + inner, 0.0);
          const auto& ti = idx[static_cast<size_t>(o)];
          const auto& tw = w[static_cast<size_t>(o)];
          for (size_t t = 0; t < ti.size(); ++t) {
            if (tw[t] == 0) continue;
            const double* s = src + ti[t] * inner;
            for (int64_t i = 0; i < inner; ++i) row[i] += tw[t] * s[i];
          }
        }
      }
      data = std::move(next);
      shape[axis] = m.out;
    }
    dispatch_number(x.dtype(), "Resize", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* dst = y.data<T>();
      for (size_t i = 0; i < data.size(); ++i) {
        if constexpr (std::is_integral_v<T>) {
          const double r = std::nearbyint(data[i]);
          dst[i] =
              static_cast<T>(std::clamp(r, static_cast<double>(std::numeric_limits<T>::lowest()),
                                        static_cast<double>(std::numeric_limits<T>::max())));
        } else {
          dst[i] = static_cast<T>(data[i]);
        }
      }
    });
  }

  int since_;
  Mode mode_ = Mode::Nearest;
  std::string coordinate_mode_;
  std::string nearest_mode_;
  float cubic_a_;
  bool exclude_outside_;
  float extrapolation_value_;
  bool antialias_;
  std::string keep_aspect_;
  std::vector<int64_t> axes_;
  std::vector<double> scales_attr_;  // Upsample-7
};

}  // namespace

GRAFT_CPU_KERNELS(resize) {
  reg.add({"", "Resize", 10, 1 << 30, {}, 0, make<Resize>});
  reg.add({"", "Upsample", 7, 9, {}, 0, make<Resize>});
}

}  // namespace graft
