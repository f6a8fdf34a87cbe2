// com.graft NhwcMaxPool: 2-D MaxPool (one output, no Indices) of a channels-last tensor
// [N, H, W, C] -> [N, OH, OW, C], which ir/transforms/nhwc_int8.cc puts between int8
// convolutions that run channels-last. The window attributes are MaxPool's; each output pixel is
// the running maximum of whole channel rows, so the inner loop runs along C.
#include <algorithm>
#include <limits>

#include "exec/kernel.h"
#include "exec/window.h"
#include "ir/names.h"

namespace graft {
namespace {

template <typename T>
void max_pool_nhwc(const WindowGeometry& g, int64_t batch, int64_t channels, const T* x, T* y) {
  const int64_t in_h = g.in[0], in_w = g.in[1], out_h = g.out[0], out_w = g.out[1];
  const int64_t rows = batch * out_h;
#pragma omp parallel for if (rows * out_w * channels > (1 << 16))
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t n = row / out_h, oh = row % out_h;
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
    if (x.rank() != 4) ctx.fail("x must be [N, H, W, C], got " + shape_to_string(x.shape()));
    const WindowGeometry g = attrs_.resolve({x.dim(1), x.dim(2)}, attrs_.kernel_shape, ctx);
    Tensor& y = ctx.output(0, x.dtype(), {x.dim(0), g.out[0], g.out[1], x.dim(3)});
    if (y.size() == 0) return;
    switch (x.dtype()) {
      case DType::UInt8:
        return max_pool_nhwc(g, x.dim(0), x.dim(3), x.data<uint8_t>(), y.data<uint8_t>());
      case DType::Int8:
        return max_pool_nhwc(g, x.dim(0), x.dim(3), x.data<int8_t>(), y.data<int8_t>());
      case DType::Float:
        return max_pool_nhwc(g, x.dim(0), x.dim(3), x.data<float>(), y.data<float>());
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
