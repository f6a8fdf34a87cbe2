// Layer normalization over the last axis, as produced by ir/transforms/fuse_layer_norm:
//   com.graft.LayerNormalization (X, Scale, B?; epsilon): ai.onnx LayerNormalization with
//     axis -1, for models whose opset predates 17;
//   com.graft.SkipLayerNormalization (A, B, gamma, beta?; epsilon) -> (Y, Sum?): Y is the layer
//     normalization of Sum = A + B (NumPy broadcasting), computed row by row in one pass over
//     the sum; Sum is written only when the node outputs it.
// Statistics are taken in double, as the ai.onnx kernel takes them.
#include <algorithm>
#include <cmath>
#include <vector>

#include "exec/kernel.h"
#include "exec/work_pool.h"
#include "ir/names.h"
#include "providers/cpu/broadcast.h"

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
    // With A and B of one shape, each row of the sum is formed right before it is normalized.
    const float* addend = nullptr;
    Tensor sum;
    if (skip_) {
      const Tensor& a = ctx.input(0);
      const Tensor& b = ctx.input(1);
      if (a.dtype() != DType::Float || b.dtype() != DType::Float) ctx.fail("inputs must be float");
      const Shape shape = broadcast_shapes({a.shape(), b.shape()}, ctx.describe());
      const bool keep = ctx.num_outputs() > 1 && ctx.has_output(1);
      if (keep) sum = ctx.output(1, DType::Float, shape);
      if (a.shape() == b.shape()) {
        addend = b.data<float>();
      } else {
        if (!keep) sum = Tensor(DType::Float, shape);
        broadcast_map<float, float, float>(
            sum, [](float p, float q) { return p + q; }, a, b);
        x = &sum;
      }
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
    // Where Sum is an output the rows go there, else to a row of scratch per thread.
    float* sp = addend && sum.defined() ? sum.data<float>() : nullptr;
    float* yp = y.data<float>();
    const float* g = gamma.data<float>();
    const float* beta = has_beta ? ctx.input(scale_input + 1).data<float>() : nullptr;
    const double epsilon = epsilon_;
    // Units of about kUnit elements (a few per thread on a BERT layer's [128, 768]); one unit,
    // run on this thread, below 2^14 elements.
    constexpr int64_t kUnit = 1 << 12;
    const int64_t per_unit =
        rows * n > (1 << 14) ? std::max<int64_t>(1, kUnit / std::max<int64_t>(n, 1)) : rows;
    const auto unit = [&](int64_t u) {
      for (int64_t r = u * per_unit; r < std::min(rows, (u + 1) * per_unit); ++r) {
        const float* row = xp + r * n;
        if (addend) {
          thread_local std::vector<float> scratch;
          if (sp == nullptr) scratch.resize(static_cast<size_t>(n));
          const float* other = addend + r * n;
          float* s = sp != nullptr ? sp + r * n : scratch.data();
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) s[j] = row[j] + other[j];
          row = s;
        }
        normalize_row(row, yp + r * n, n, epsilon, g, beta);
      }
    };
    if (rows > 0) run_units((rows + per_unit - 1) / per_unit, unit);
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
