// RoiAlign: average or max pools bilinearly sampled points of each region of interest into an
// output_height x output_width grid. Max mode takes the largest weighted corner, as the ONNX
// reference and ONNX Runtime do.
#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "exec/kernel.h"

namespace graft {
namespace {

template <typename A>
struct Sample {
  int64_t pos[4];
  A w[4];
};

class RoiAlign final : public Kernel {
 public:
  explicit RoiAlign(const KernelInfo& info)
      : output_height_(info.attr_int("output_height", 1)),
        output_width_(info.attr_int("output_width", 1)),
        sampling_ratio_(info.attr_int("sampling_ratio", 0)),
        spatial_scale_(info.attr_float("spatial_scale", 1.0f)) {
    const std::string mode = info.attr_string("mode", "avg");
    if (mode != "avg" && mode != "max") info.fail("unknown mode '" + mode + "'");
    max_ = mode == "max";
    const std::string transform =
        info.attr_string("coordinate_transformation_mode",
                         info.since_version() < 16 ? "output_half_pixel" : "half_pixel");
    if (transform != "half_pixel" && transform != "output_half_pixel") {
      info.fail("unknown coordinate_transformation_mode '" + transform + "'");
    }
    half_pixel_ = transform == "half_pixel";
    if (output_height_ <= 0 || output_width_ <= 0) info.fail("output size must be positive");
    if (sampling_ratio_ < 0) info.fail("sampling_ratio must be >= 0");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& rois = ctx.input(1);
    const Tensor& batch_indices = ctx.input(2);
    if (x.rank() != 4) ctx.fail("X must have rank 4, got " + shape_to_string(x.shape()));
    if (rois.rank() != 2 || rois.dim(1) != 4) ctx.fail("rois must have shape [num_rois, 4]");
    if (rois.dtype() != x.dtype()) ctx.fail("rois must have X's dtype");
    const int64_t num_rois = rois.dim(0);
    if (batch_indices.size() != num_rois) {
      ctx.fail("batch_indices must have one entry per roi");
    }
    const std::vector<int64_t> batch = batch_indices.to_int_vector();
    for (int64_t b : batch) {
      if (b < 0 || b >= x.dim(0)) ctx.fail("batch index " + std::to_string(b) + " out of range");
    }
    Tensor& y = ctx.output(0, x.dtype(), {num_rois, x.dim(1), output_height_, output_width_});
    dispatch_float(x.dtype(), "RoiAlign", [&](auto tag) {
      using T = typename decltype(tag)::type;
      run<T>(ctx, x, rois, batch, y);
    });
  }

 private:
  template <typename T>
  void run(const KernelContext& ctx, const Tensor& x, const Tensor& rois,
           const std::vector<int64_t>& batch, Tensor& y) const {
    using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const int64_t channels = x.dim(1), height = x.dim(2), width = x.dim(3);
    const int64_t ph_count = output_height_, pw_count = output_width_;
    const T* src = x.data<T>();
    const T* roi_data = rois.data<T>();
    T* dst = y.data<T>();
    const auto num_rois = static_cast<int64_t>(batch.size());
    for (int64_t i = 0; i < num_rois * 4; ++i) {
      if (!std::isfinite(static_cast<double>(roi_data[i]))) {
        ctx.fail("rois hold a non-finite coordinate");
      }
    }
#pragma omp parallel for if (y.size() > (1 << 12) && num_rois > 1)
    for (int64_t n = 0; n < num_rois; ++n) {
      const A offset = half_pixel_ ? A(0.5) : A(0);
      const A scale = static_cast<A>(spatial_scale_);
      const A start_w = static_cast<A>(roi_data[n * 4 + 0]) * scale - offset;
      const A start_h = static_cast<A>(roi_data[n * 4 + 1]) * scale - offset;
      const A end_w = static_cast<A>(roi_data[n * 4 + 2]) * scale - offset;
      const A end_h = static_cast<A>(roi_data[n * 4 + 3]) * scale - offset;
      A roi_w = end_w - start_w, roi_h = end_h - start_h;
      if (!half_pixel_) {
        roi_w = std::max(roi_w, A(1));
        roi_h = std::max(roi_h, A(1));
      }
      const A bin_h = roi_h / static_cast<A>(ph_count), bin_w = roi_w / static_cast<A>(pw_count);
      const int64_t ratio_h =
          sampling_ratio_ > 0 ? sampling_ratio_
                              : static_cast<int64_t>(std::ceil(roi_h / static_cast<A>(ph_count)));
      const int64_t ratio_w =
          sampling_ratio_ > 0 ? sampling_ratio_
                              : static_cast<int64_t>(std::ceil(roi_w / static_cast<A>(pw_count)));
      // The divisor uses the raw ratios, as the reference does, even for inverted regions.
      const A count = static_cast<A>(std::max<int64_t>(ratio_h * ratio_w, 1));
      const int64_t grid_h = std::max<int64_t>(ratio_h, 0), grid_w = std::max<int64_t>(ratio_w, 0);
      std::vector<Sample<A>> samples;
      samples.reserve(
          static_cast<size_t>(std::max<int64_t>(0, ph_count * pw_count * grid_h * grid_w)));
      for (int64_t ph = 0; ph < ph_count; ++ph) {
        for (int64_t pw = 0; pw < pw_count; ++pw) {
          for (int64_t iy = 0; iy < grid_h; ++iy) {
            A yy = start_h + static_cast<A>(ph) * bin_h +
                   (static_cast<A>(iy) + A(0.5)) * bin_h / static_cast<A>(grid_h);
            for (int64_t ix = 0; ix < grid_w; ++ix) {
              A xx = start_w + static_cast<A>(pw) * bin_w +
                     (static_cast<A>(ix) + A(0.5)) * bin_w / static_cast<A>(grid_w);
              Sample<A> s{{0, 0, 0, 0}, {0, 0, 0, 0}};
              if (!(yy < -1 || yy > static_cast<A>(height) || xx < -1 ||
                    xx > static_cast<A>(width)) &&
                  height > 0 && width > 0) {
                A sy = std::max(yy, A(0)), sx = std::max(xx, A(0));
                int64_t y_low = static_cast<int64_t>(sy), x_low = static_cast<int64_t>(sx);
                int64_t y_high, x_high;
                if (y_low >= height - 1) {
                  y_high = y_low = height - 1;
                  sy = static_cast<A>(y_low);
                } else {
                  y_high = y_low + 1;
                }
                if (x_low >= width - 1) {
                  x_high = x_low = width - 1;
                  sx = static_cast<A>(x_low);
                } else {
                  x_high = x_low + 1;
                }
                const A ly = sy - static_cast<A>(y_low), lx = sx - static_cast<A>(x_low);
                const A hy = 1 - ly, hx = 1 - lx;
                s = {{y_low * width + x_low, y_low * width + x_high, y_high * width + x_low,
                      y_high * width + x_high},
                     {hy * hx, hy * lx, ly * hx, ly * lx}};
              }
              samples.push_back(s);
            }
          }
        }
      }
      for (int64_t c = 0; c < channels; ++c) {
        const T* plane = src + (batch[static_cast<size_t>(n)] * channels + c) * height * width;
        T* out = dst + (n * channels + c) * ph_count * pw_count;
        size_t k = 0;
        for (int64_t bin = 0; bin < ph_count * pw_count; ++bin) {
          A value = 0;
          bool first = true;
          for (int64_t i = 0; i < grid_h * grid_w; ++i, ++k) {
            const Sample<A>& s = samples[k];
            A v[4];
            for (int j = 0; j < 4; ++j) {
              v[j] = height > 0 && width > 0 ? s.w[j] * static_cast<A>(plane[s.pos[j]]) : A(0);
            }
            if (max_) {
              const A m = std::max(std::max(v[0], v[1]), std::max(v[2], v[3]));
              value = first ? m : std::max(value, m);
              first = false;
            } else {
              value += v[0] + v[1] + v[2] + v[3];
            }
          }
          out[bin] = T(max_ ? value : value / count);
        }
      }
    }
  }

  int64_t output_height_, output_width_, sampling_ratio_;
  float spatial_scale_;
  bool max_ = false;
  bool half_pixel_ = true;
};

}  // namespace

GRAFT_CPU_KERNELS(misc_roi_align) {
  const std::vector<DType> types = {DType::Float, DType::Double, DType::Float16, DType::BFloat16};
  reg.add({"", "RoiAlign", 10, 1 << 30, types, 0, make<RoiAlign>});
}

}  // namespace graft
