// Layer normalization over the last axis, as produced by ir/transforms/fuse_layer_norm:
//   com.graft.LayerNormalization (X, Scale, B?; epsilon): ai.onnx LayerNormalization with
//     axis -1, for models whose opset predates 17;
//   com.graft.SkipLayerNormalization (A, B, gamma, beta?; epsilon) -> (Y, Sum?): Y is the layer
//     normalization of Sum = A + B (NumPy broadcasting), computed row by row in one pass over
//     the sum; Sum is written only when the node outputs it.
// Statistics are taken in double, as the ai.onnx kernel takes them.
#include <omp.h>

#include <cmath>

#include "exec/kernel.h"
#include "ir/names.h"
#include "providers/cpu/broadcast.h"
#include "providers/cpu/math/elementwise.h"

namespace graft {
namespace {

// y = (x - mean) / sqrt(var + epsilon) * gamma (+ beta) over one row of n floats.
void normalize_row(const float* x, float* y, int64_t n, double epsilon, const float* gamma,
                   const float* beta) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) sum += static_cast<double>(x[j]);
  const double mean = sum / static_cast<double>(n);
  double sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int64_t j = 0; j < n; ++j) {
    const double d = static_cast<double>(x[j]) - mean;
    sq += d * d;
  }
  const auto inv_std = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(n) + epsilon));
  const auto m = static_cast<float>(mean);
  if (beta) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) y[j] = (x[j] - m) * inv_std * gamma[j] + beta[j];
  } else {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) y[j] = (x[j] - m) * inv_std * gamma[j];
  }
}

class LayerNorm : public Kernel {
 public:
  LayerNorm(const KernelInfo& info, bool skip)
      : skip_(skip), epsilon_(info.attr_float("epsilon", 1e-5f)) {
    if (!skip && info.attr_int("axis", -1) != -1) info.fail("only axis -1 is supported");
  }

  void compute(KernelContext& ctx) override {
    const int scale_input = skip_ ? 2 : 1;
    const Tensor* x = &ctx.input(0);
    Tensor sum;
    if (skip_) {
      const Tensor& a = ctx.input(0);
      const Tensor& b = ctx.input(1);
      if (a.dtype() != DType::Float || b.dtype() != DType::Float) ctx.fail("inputs must be float");
      const Shape shape = broadcast_shapes({a.shape(), b.shape()}, ctx.describe());
      const bool keep = ctx.num_outputs() > 1 && ctx.has_output(1);
      sum = keep ? ctx.output(1, DType::Float, shape) : Tensor(DType::Float, shape);
      if (a.shape() == b.shape()) {
        const float* ap = a.data<float>();
        const float* bp = b.data<float>();
        float* sp = sum.data<float>();
        elementwise::parallel_ranges(sum.size(), [&](int64_t begin, int64_t end) {
#pragma omp simd
          for (int64_t i = begin; i < end; ++i) sp[i] = ap[i] + bp[i];
        });
      } else {
        broadcast_map<float, float, float>(
            sum, [](float p, float q) { return p + q; }, a, b);
      }
      x = &sum;
    }
    if (x->dtype() != DType::Float) ctx.fail("input must be float");
    if (x->rank() < 1) ctx.fail("input must have rank 1 or more");
    const int64_t n = x->dim(x->rank() - 1);
    const Tensor& gamma = ctx.input(scale_input);
    const bool has_beta = ctx.has_input(scale_input + 1);
    if (gamma.size() != n || (has_beta && ctx.input(scale_input + 1).size() != n))
      ctx.fail("scale and bias must have " + std::to_string(n) + " elements (the last axis of " +
               shape_to_string(x->shape()) + ")");
    Tensor& y = ctx.output(0, DType::Float, x->shape());
    const int64_t rows = n > 0 ? x->size() / n : 0;
    const float* xp = x->data<float>();
    float* yp = y.data<float>();
    const float* g = gamma.data<float>();
    const float* beta = has_beta ? ctx.input(scale_input + 1).data<float>() : nullptr;
    const double epsilon = epsilon_;
#pragma omp parallel for if (rows * n > (1 << 14) && !omp_in_parallel())
    for (int64_t r = 0; r < rows; ++r) normalize_row(xp + r * n, yp + r * n, n, epsilon, g, beta);
  }

 private:
  bool skip_;
  float epsilon_;
};

KernelFactory layer_norm(bool skip) {
  return [skip](const KernelInfo& info) { return std::make_unique<LayerNorm>(info, skip); };
}

}  // namespace

GRAFT_CPU_KERNELS(transformer_layer_norm) {
  reg.add({names::kDomain, "LayerNormalization", 1, 1 << 30, {DType::Float}, 0, layer_norm(false)});
  reg.add(
      {names::kDomain, "SkipLayerNormalization", 1, 1 << 30, {DType::Float}, 0, layer_norm(true)});
}

}  // namespace graft
