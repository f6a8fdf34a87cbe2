// com.graft.ConvGrad: dX, dW and dB of a float 2-D convolution without groups, each computed only
// when its output is named, through oneDNN's backward-data and backward-weights primitives.
#include "exec/kernel.h"
#include "ir/names.h"
#include "providers/cpu/nn/dnnl_conv.h"

namespace graft {
namespace {

class ConvGrad : public Kernel {
 public:
  explicit ConvGrad(const KernelInfo& info)
      : strides_(info.attr_ints("strides")),
        pads_(info.attr_ints("pads")),
        dilations_(info.attr_ints("dilations")) {
    if (strides_.size() != 2 || dilations_.size() != 2 || pads_.size() != 4)
      info.fail("needs 2 strides, 2 dilations and 4 pads (a 2-D convolution)");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& dy = ctx.input(0);
    const Tensor& x = ctx.input(1);
    const Tensor& w = ctx.input(2);
    if (x.rank() != 4 || w.rank() != 4 || dy.rank() != 4)
      ctx.fail("dY " + shape_to_string(dy.shape()) + ", X " + shape_to_string(x.shape()) +
               " and W " + shape_to_string(w.shape()) + " must all have rank 4");
    if (x.dtype() != DType::Float || w.dtype() != DType::Float || dy.dtype() != DType::Float)
      ctx.fail("dY, X and W must be float");
    cpu::DnnlConvShape s{x.dim(0), x.dim(1), w.dim(0), 1, {}, {}, {}, {}, {}, {}};
    for (int i = 0; i < 2; ++i) {
      s.in[i] = x.dim(2 + i);
      s.kernel[i] = w.dim(2 + i);
      s.strides[i] = strides_[static_cast<size_t>(i)];
      s.dilations[i] = dilations_[static_cast<size_t>(i)];
      s.pads[i] = pads_[static_cast<size_t>(i)];
      s.pads[i + 2] = pads_[static_cast<size_t>(i + 2)];
      const int64_t extent = (s.kernel[i] - 1) * s.dilations[i] + 1;
      s.out[i] = (s.in[i] + s.pads[i] + s.pads[i + 2] - extent) / s.strides[i] + 1;
    }
    if (w.dim(1) != s.channels || dy.dim(0) != s.batch || dy.dim(1) != s.maps ||
        dy.dim(2) != s.out[0] || dy.dim(3) != s.out[1])
      ctx.fail("dY " + shape_to_string(dy.shape()) + " is not the output of X " +
               shape_to_string(x.shape()) + " convolved with W " + shape_to_string(w.shape()));
    float* dx = ctx.has_output(0) ? ctx.output(0, DType::Float, x.shape()).data<float>() : nullptr;
    // oneDNN computes dW whenever it computes dB; without a named dW it goes to scratch.
    const bool weights = ctx.has_output(1) || ctx.has_output(2);
    Tensor dw;
    if (weights)
      dw = ctx.has_output(1) ? ctx.output(1, DType::Float, w.shape())
                             : Tensor(DType::Float, w.shape());
    float* db = ctx.has_output(2) ? ctx.output(2, DType::Float, {s.maps}).data<float>() : nullptr;
    cpu::dnnl_conv_backward(s, x.data<float>(), w.data<float>(), dy.data<float>(), dx,
                            weights ? dw.data<float>() : nullptr, db);
  }

 private:
  std::vector<int64_t> strides_, pads_, dilations_;
};

}  // namespace

GRAFT_CPU_KERNELS(conv_grad) {
  reg.add({names::kDomain, "ConvGrad", 1, 1 << 30, {DType::Float}, 0, make<ConvGrad>});
}

}  // namespace graft
