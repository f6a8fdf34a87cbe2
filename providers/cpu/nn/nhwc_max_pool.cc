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

// The taps [first, last) of a window along one dim that land inside the input: tap t reads
// start + t * dilation, which must lie in [0, extent).
struct Taps {
  int64_t first, last;
};
Taps taps_inside(int64_t start, int64_t dilation, int64_t kernel, int64_t extent) {
  if (start >= 0 && start + (kernel - 1) * dilation < extent) return {0, kernel};  // no division
  const int64_t first = start >= 0 ? 0 : (-start + dilation - 1) / dilation;
  const int64_t last = start >= extent ? 0 : std::min(kernel, (extent - 1 - start) / dilation + 1);
  return {first, std::max(first, last)};
}

template <typename T>
void max_pool_nhwc(const WindowGeometry& g, int64_t batch, int64_t channels, const T* x, T* y) {
  const int64_t in_h = g.in[0], in_w = g.in[1], out_h = g.out[0], out_w = g.out[1];
  const int64_t dh = g.dilations[0], dw = g.dilations[1];
  const int64_t rows = batch * out_h;
#pragma omp parallel for if (rows * out_w * channels > (1 << 16))
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t n = row / out_h, oh = row % out_h;
    const int64_t ih0 = oh * g.strides[0] - g.pads[0];
    const Taps kh = taps_inside(ih0, dh, g.kernel[0], in_h);
    for (int64_t ow = 0; ow < out_w; ++ow) {
      const int64_t iw0 = ow * g.strides[1] - g.pads[1];
      const Taps kw = taps_inside(iw0, dw, g.kernel[1], in_w);
      // Input pixel (ih0 + i * dh, iw0 + j * dw) of image n, for taps inside the image only.
      const auto at = [&](int64_t i, int64_t j) {
        return x + ((n * in_h + ih0 + i * dh) * in_w + iw0 + j * dw) * channels;
      };
      T* out = y + (row * out_w + ow) * channels;
      if constexpr (std::is_same_v<T, float>) {
        // Channel blocks of 8 (every blocked float tensor): whole vectors, no per-lane loop.
        if (channels % 8 == 0) {
          for (int64_t c = 0; c < channels; c += 8) {
            __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
            for (int64_t i = kh.first; i < kh.last; ++i)
              for (int64_t j = kw.first; j < kw.last; ++j)
                m = _mm256_max_ps(_mm256_loadu_ps(at(i, j) + c), m);
            _mm256_storeu_ps(out + c, m);
          }
          continue;
        }
      }
      std::fill(out, out + channels, std::numeric_limits<T>::lowest());
      for (int64_t i = kh.first; i < kh.last; ++i) {
        for (int64_t j = kw.first; j < kw.last; ++j) {
          const T* in = at(i, j);
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
