// com.graft NhwcMaxPool: 2-D MaxPool (one output, no Indices) of a channels-last tensor
// [N, H, W, C] -> [N, OH, OW, C], which ir/transforms/nhwc_int8.cc puts between int8
// convolutions that run channels-last, or of a channel-blocked one [N, C / b, H, W, b] (nchwc.h)
// -> [N, C / b, OH, OW, b], which ir/transforms/nchwc.cc puts between float convolutions: each
// block of channels is pooled as a channels-last image of b channels. The window attributes are
// MaxPool's; each output pixel is the running maximum of whole channel rows, so the inner loop
// runs along C.
#include <immintrin.h>

#include <algorithm>
#include <limits>
#include <type_traits>

#include "exec/kernel.h"
#include "exec/window.h"
#include "ir/names.h"

namespace graft {
namespace {

// One output row of a float image whose channels are a multiple of 8: the maximum over each
// pixel's window, a vector of 8 channels at a time. Window rows outside the image are skipped
// once per row; columns are checked only for the pixels at the edges.
void max_row_f32x8(const WindowGeometry& g, int64_t channels, const float* image, int64_t oh,
                   float* out) {
  const int64_t in_h = g.in[0], in_w = g.in[1], out_w = g.out[1];
  const int64_t kh_n = g.kernel[0], kw_n = g.kernel[1];
  const int64_t sh = g.strides[0], sw = g.strides[1], dh = g.dilations[0], dw = g.dilations[1];
  const int64_t ph = g.pads[0], pw = g.pads[1];
  // Input rows of the window, and the output columns whose whole window is inside the image.
  const float* rows[64];
  int64_t n_rows = 0;
  for (int64_t kh = 0; kh < kh_n; ++kh) {
    const int64_t ih = oh * sh - ph + kh * dh;
    if (ih >= 0 && ih < in_h && n_rows < 64) rows[n_rows++] = image + ih * in_w * channels;
  }
  const bool all_rows = kh_n <= 64 && n_rows == kh_n;
  const float* const* row = rows;
  for (int64_t ow = 0; ow < out_w; ++ow) {
    const int64_t iw0 = ow * sw - pw;
    const bool inside = iw0 >= 0 && iw0 + (kw_n - 1) * dw < in_w && all_rows;
    for (int64_t c = 0; c < channels; c += 8) {
      __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
      if (inside) {
        for (int64_t r = 0; r < n_rows; ++r) {
          const float* p = row[r] + iw0 * channels + c;
          for (int64_t kw = 0; kw < kw_n; ++kw)
            m = _mm256_max_ps(_mm256_loadu_ps(p + kw * dw * channels), m);
        }
      } else {
        for (int64_t kh = 0; kh < kh_n; ++kh) {
          const int64_t ih = oh * sh - ph + kh * dh;
          if (ih < 0 || ih >= in_h) continue;
          for (int64_t kw = 0; kw < kw_n; ++kw) {
            const int64_t iw = iw0 + kw * dw;
            if (iw < 0 || iw >= in_w) continue;
            m = _mm256_max_ps(_mm256_loadu_ps(image + (ih * in_w + iw) * channels + c), m);
          }
        }
      }
      _mm256_storeu_ps(out + ow * channels + c, m);
    }
  }
}

template <typename T>
void max_pool_nhwc(const WindowGeometry& g, int64_t batch, int64_t channels, const T* x, T* y) {
  const int64_t in_h = g.in[0], in_w = g.in[1], out_h = g.out[0], out_w = g.out[1];
  const int64_t rows = batch * out_h;
#pragma omp parallel for if (rows * out_w * channels > (1 << 16))
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t n = row / out_h, oh = row % out_h;
    if constexpr (std::is_same_v<T, float>) {
      // Channel blocks of 8 (every blocked float tensor): whole vectors, no per-lane loop.
      if (channels % 8 == 0) {
        max_row_f32x8(g, channels, x + n * in_h * in_w * channels, oh, y + row * out_w * channels);
        continue;
      }
    }
    for (int64_t ow = 0; ow < out_w; ++ow) {
      T* out = y + (row * out_w + ow) * channels;
      std::fill(out, out + channels, std::numeric_limits<T>::lowest());
      for (int64_t kh = 0; kh < g.kernel[0]; ++kh) {
        const int64_t ih = oh * g.strides[0] - g.pads[0] + kh * g.dilations[0];
        if (ih < 0 || ih >= in_h) continue;
        for (int64_t kw = 0; kw < g.kernel[1]; ++kw) {
          const int64_t iw = ow * g.strides[1] - g.pads[1] + kw * g.dilations[1];
          if (iw < 0 || iw >= in_w) continue;
          const T* in = x + ((n * in_h + ih) * in_w + iw) * channels;
          for (int64_t c = 0; c < channels; ++c) out[c] = std::max(out[c], in[c]);
        }
      }
    }
  }
}

class NhwcMaxPool : public Kernel {
 public:
  explicit NhwcMaxPool(const KernelInfo& info) : attrs_(info) {
    if (attrs_.kernel_shape.size() != 2) info.fail("kernel_shape must have 2 values");
    if (info.num_outputs() > 1 && info.has_output(1)) info.fail("has no Indices output");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t rank = x.rank();
    if (rank != 4 && rank != 5)
      ctx.fail("x must be [N, H, W, C] or [N, C / b, H, W, b], got " + shape_to_string(x.shape()));
    const WindowGeometry g =
        attrs_.resolve({x.dim(rank - 3), x.dim(rank - 2)}, attrs_.kernel_shape, ctx);
    Shape out_shape = x.shape();
    out_shape[static_cast<size_t>(rank - 3)] = g.out[0];
    out_shape[static_cast<size_t>(rank - 2)] = g.out[1];
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    if (y.size() == 0) return;
    const int64_t images = rank == 5 ? x.dim(0) * x.dim(1) : x.dim(0), channels = x.dim(rank - 1);
    switch (x.dtype()) {
      case DType::UInt8:
        return max_pool_nhwc(g, images, channels, x.data<uint8_t>(), y.data<uint8_t>());
      case DType::Int8:
        return max_pool_nhwc(g, images, channels, x.data<int8_t>(), y.data<int8_t>());
      case DType::Float:
        return max_pool_nhwc(g, images, channels, x.data<float>(), y.data<float>());
      default:
        ctx.fail(std::string("x must be uint8, int8 or float, got ") + dtype_name(x.dtype()));
    }
  }

 private:
  WindowAttrs attrs_;
};

}  // namespace

GRAFT_CPU_KERNELS(nhwc_max_pool) {
  reg.add({names::kDomain,
           "NhwcMaxPool",
           1,
           1 << 30,
           {DType::UInt8, DType::Int8, DType::Float},
           0,
           make<NhwcMaxPool>});
}

}  // namespace graft
