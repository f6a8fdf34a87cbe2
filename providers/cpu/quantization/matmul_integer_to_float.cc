// com.graft MatMulIntegerToFloat (onnxruntime's com.microsoft op of that name): the float result
// of a dynamically quantized linear layer, Y = (A - a_zero) * (B - b_zero) * a_scale * b_scale
// (+ bias), which quantize_dynamic writes as MatMulInteger -> Cast -> Mul (-> Add) and
// ir/transforms/fuse_qdq.cc folds into this one node. Inputs: A (uint8 / int8, from
// DynamicQuantizeLinear), B (constant int8 [K, N]), a_scale (scalar), b_scale (constant, one value
// or N), a_zero_point (optional scalar), b_zero_point (optional constant, zeros), bias (optional
// constant float [N]). One oneDNN int8 product writes the scaled, biased floats, B packed once;
// where the int8 products must be exact and the CPU's would saturate (dnnl_int8_usable), a float
// GEMM of the integers.
#include <memory>
#include <string>

#include "exec/kernel.h"
#include "exec/matmul_shape.h"
#include "ir/names.h"
#include "providers/cpu/linalg/gemm_util.h"
#include "providers/cpu/provider.h"
#include "providers/cpu/quantization/dnnl_int8.h"
#include "providers/cpu/quantization/quant_util.h"

namespace graft {
namespace {

class MatMulIntegerToFloat : public Kernel {
 public:
  explicit MatMulIntegerToFloat(const KernelInfo& info) {
    const Tensor* b = info.constant_input(1);
    if (!b || b->dtype() != DType::Int8 || b->rank() != 2)
      info.fail("B must be a constant 2-D int8 tensor");
    k_ = b->dim(0);
    n_ = b->dim(1);
    const Tensor* b_scale = info.constant_input(3);
    if (!b_scale || b_scale->dtype() != DType::Float ||
        (b_scale->size() != 1 && b_scale->size() != n_))
      info.fail("b_scale must be a constant float scalar or have " + std::to_string(n_) +
                " elements");
    b_scale_.assign(b_scale->data<float>(), b_scale->data<float>() + b_scale->size());
    if (info.has_input(5)) {
      const Tensor* zero = info.constant_input(5);
      bool zeros = zero && zero->dtype() == DType::Int8;
      for (int64_t i = 0; zeros && i < zero->size(); ++i) zeros = zero->data<int8_t>()[i] == 0;
      if (!zeros) info.fail("b_zero_point must be a constant of int8 zeros");
    }
    if (info.has_input(6)) {
      const Tensor* bias = info.constant_input(6);
      if (!bias || bias->dtype() != DType::Float || bias->size() != n_)
        info.fail("bias must be a constant float tensor of " + std::to_string(n_) + " elements");
      bias_.assign(bias->data<float>(), bias->data<float>() + n_);
    }
    // DynamicQuantizeLinear, which feeds A in the models fuse_qdq rewrites, writes uint8.
    a_dtype_ = info.input_dtype(0) == DType::Undefined ? DType::UInt8 : info.input_dtype(0);
    if (a_dtype_ != DType::UInt8 && a_dtype_ != DType::Int8)
      info.fail(std::string("A must be uint8 or int8, got ") + dtype_name(a_dtype_));
    cpu::Int8Requant requant;
    requant.x_dtype = a_dtype_;
    requant.y_dtype = DType::Float;
    requant.scale_count = static_cast<int64_t>(b_scale_.size());
    requant.bias = !bias_.empty();
    if (cpu::dnnl_int8_usable(cpu::int8_exact(info), a_dtype_, b->data<int8_t>(), b->size()))
      product_ = std::make_unique<cpu::DnnlInt8MatMul>(k_, n_, b->data<int8_t>(), requant);
    else
      float_b_.assign(b->data<int8_t>(), b->data<int8_t>() + b->size());
  }

  std::vector<int> packed_inputs() const override { return {1}; }

  void compute(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    if (a.dtype() != a_dtype_)
      ctx.fail(std::string("A must be ") + dtype_name(a_dtype_) + ", got " + dtype_name(a.dtype()));
    const MatMulShape plan = plan_matmul(ctx, a.shape(), {k_, n_});
    const Tensor& a_scale = ctx.input(2);
    if (a_scale.dtype() != DType::Float || a_scale.size() != 1)
      ctx.fail("a_scale must be one float, got " + shape_to_string(a_scale.shape()));
    int32_t a_zero = 0;
    if (ctx.has_input(4)) {
      const std::vector<int32_t> zero = cpu::zero_point_values(ctx, 4, a_dtype_, "a_zero_point");
      if (zero.size() != 1) ctx.fail("a_zero_point must be a scalar");
      a_zero = zero[0];
    }
    // The multiplier is formed in float, as the Mul of the two scales is.
    std::vector<float> scales(b_scale_.size());
    for (size_t j = 0; j < scales.size(); ++j) scales[j] = a_scale.data<float>()[0] * b_scale_[j];
    Tensor& y = ctx.output(0, DType::Float, plan.out);
    if (y.size() == 0) return;
    float* out = y.data<float>();
    if (k_ == 0) {
      for (int64_t i = 0; i < y.size(); ++i) out[i] = bias_.empty() ? 0.0f : bias_[i % n_];
      return;
    }
    const int64_t rows = a.size() / k_;
    if (product_) {
      product_->run(rows, a.raw(), a_zero, out, scales.data(),
                    bias_.empty() ? nullptr : bias_.data());
      return;
    }
    // Without exact int8 products: a float GEMM of the integer values, whose sums round only
    // past 2^24.
    std::vector<float> af(static_cast<size_t>(a.size()));
    for (size_t i = 0; i < af.size(); ++i)
      af[i] = static_cast<float>(a_dtype_ == DType::UInt8 ? a.data<uint8_t>()[i]
                                                          : a.data<int8_t>()[i]) -
              static_cast<float>(a_zero);
    cpu::sgemm(false, false, rows, n_, k_, 1.0f, af.data(), k_, float_b_.data(), n_, 0.0f, out, n_);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < n_; ++j) {
        float& v = out[r * n_ + j];
        v = v * scales[scales.size() == 1 ? 0 : static_cast<size_t>(j)] +
            (bias_.empty() ? 0.0f : bias_[static_cast<size_t>(j)]);
      }
  }

 private:
  int64_t k_ = 0, n_ = 0;
  DType a_dtype_ = DType::Undefined;
  std::vector<float> b_scale_, bias_;
  std::vector<float> float_b_;  // B as floats where oneDNN's int8 product would not be exact
  std::unique_ptr<cpu::DnnlInt8MatMul> product_;
};

}  // namespace

GRAFT_CPU_KERNELS(matmul_integer_to_float) {
  reg.add({names::kDomain,
           "MatMulIntegerToFloat",
           1,
           1 << 30,
           {DType::UInt8, DType::Int8},
           0,
           make<MatMulIntegerToFloat>});
}

}  // namespace graft
