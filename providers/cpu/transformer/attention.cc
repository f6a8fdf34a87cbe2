// com.graft.Attention: multi-head scaled dot-product attention over projections already split
// into heads, produced by ir/transforms/fuse_attention from what PyTorch exports.
//   Q [B, S, H, D], K [B, T, H, D], V [B, T, H, Dv], optional additive mask broadcasting to
//   [B, H, S, T] (rank 4 or less), attribute scale:
//   Y[b, s, h, :] = softmax_t(scale * Q[b,s,h,:] . K[b,t,h,:] + mask[b,h,s,t]) . V[b, :, h, :]
// A row whose scores are all -inf (every key masked) gives zeros, as the exported NaN guard
// does. Each (batch, head) pair is one task: two GEMMs reading the heads in place through their
// row strides and one [S, T] score block per thread, so no [B, H, S, T] tensor is formed. Tasks
// run on exec/work_pool.h's threads, like the dense layers around them.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "exec/kernel.h"
#include "exec/work_pool.h"
#include "ir/names.h"
#include "providers/cpu/linalg/gemm_util.h"
#include "providers/cpu/math/fast_math.h"

namespace graft {
namespace {

// Softmax of `n` scores in place; all -inf (or empty) gives zeros.
void softmax_row(float* row, int64_t n) {
  float max = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : max)
  for (int64_t j = 0; j < n; ++j) max = std::max(max, row[j]);
  if (max == -std::numeric_limits<float>::infinity()) {
    std::fill(row, row + n, 0.0f);
    return;
  }
  fast_math::softmax_from_max(row, row, n, max);
}

class Attention : public Kernel {
 public:
  explicit Attention(const KernelInfo& info) : scale_(info.attr_float("scale", 0.0f)) {
    if (!info.has_attr("scale")) info.fail("attribute 'scale' is required");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& q = ctx.input(0);
    const Tensor& k = ctx.input(1);
    const Tensor& v = ctx.input(2);
    for (int i = 0; i < 3; ++i) {
      if (ctx.input(i).rank() != 4)
        ctx.fail("input " + std::to_string(i) +
                 " must be [batch, sequence, heads, head size], got " +
                 shape_to_string(ctx.input(i).shape()));
      if (ctx.input(i).dtype() != DType::Float) ctx.fail("inputs must be float");
    }
    const int64_t batch = q.dim(0), seq = q.dim(1), heads = q.dim(2), depth = q.dim(3);
    const int64_t keys = k.dim(1), depth_v = v.dim(3);
    if (k.dim(0) != batch || v.dim(0) != batch || k.dim(2) != heads || v.dim(2) != heads ||
        k.dim(3) != depth || v.dim(1) != keys)
      ctx.fail("Q " + shape_to_string(q.shape()) + ", K " + shape_to_string(k.shape()) + " and V " +
               shape_to_string(v.shape()) + " do not agree");
    // Mask strides over [B, H, S, T] (0 where the mask broadcasts).
    const float* mask = nullptr;
    int64_t mask_stride[4] = {0, 0, 0, 0};
    if (ctx.has_input(3)) {
      const Tensor& m = ctx.input(3);
      const int64_t full[4] = {batch, heads, seq, keys};
      if (m.dtype() != DType::Float || m.rank() > 4)
        ctx.fail("mask must be float of rank 4 or less, got " + shape_to_string(m.shape()));
      int64_t stride = 1;
      for (int64_t d = m.rank() - 1, axis = 3; d >= 0; --d, --axis) {
        if (m.dim(d) != 1 && m.dim(d) != full[axis])
          ctx.fail("mask " + shape_to_string(m.shape()) + " does not broadcast to [" +
                   std::to_string(batch) + ", " + std::to_string(heads) + ", " +
                   std::to_string(seq) + ", " + std::to_string(keys) + "]");
        mask_stride[axis] = m.dim(d) == 1 ? 0 : stride;
        stride *= m.dim(d);
      }
      mask = m.data<float>();
    }
    Tensor& y = ctx.output(0, DType::Float, {batch, seq, heads, depth_v});
    if (y.size() == 0) return;
    const float* qp = q.data<float>();
    const float* kp = k.data<float>();
    const float* vp = v.data<float>();
    float* yp = y.data<float>();
    run_units(batch * heads, [&](int64_t task) {
      // The [S, T] score block of this task, reused by the thread's later tasks.
      thread_local std::vector<float> block;
      block.resize(static_cast<size_t>(seq * keys));
      float* scores = block.data();
      const int64_t b = task / heads, h = task % heads;
      cpu::sgemm(false, true, seq, keys, depth, scale_, qp + (b * seq * heads + h) * depth,
                 heads * depth, kp + (b * keys * heads + h) * depth, heads * depth, 0.0f, scores,
                 keys);
      for (int64_t s = 0; s < seq; ++s) {
        float* row = scores + s * keys;
        if (mask) {
          const float* m = mask + b * mask_stride[0] + h * mask_stride[1] + s * mask_stride[2];
          const int64_t step = mask_stride[3];
          for (int64_t t = 0; t < keys; ++t) row[t] += m[t * step];
        }
        softmax_row(row, keys);
      }
      cpu::sgemm(false, false, seq, depth_v, keys, 1.0f, scores, keys,
                 vp + (b * keys * heads + h) * depth_v, heads * depth_v, 0.0f,
                 yp + (b * seq * heads + h) * depth_v, heads * depth_v);
    });
  }

 private:
  float scale_;
};

}  // namespace

GRAFT_CPU_KERNELS(transformer_attention) {
  reg.add({names::kDomain, "Attention", 1, 1 << 30, {DType::Float}, 0, make<Attention>});
}

}  // namespace graft
