// The shape rules of the matrix products, shared by every provider's MatMul, Gemm, FusedMatMul,
// MatMulInteger and QLinearMatMul.
#pragma once

#include <cstdint>
#include <vector>

#include "exec/kernel.h"
#include "exec/tensor.h"

namespace graft {

// Batch broadcasting for MatMul-like ops. `a` and `b` are the batch dims (all but the last two).
// Sets `out` to their NumPy broadcast and returns, for every output batch index, the batch index
// into `a` and into `b`. Returns false when the dims do not broadcast.
bool broadcast_batch(const Shape& a, const Shape& b, Shape& out, std::vector<int64_t>& a_index,
                     std::vector<int64_t>& b_index);

// 1-D operands promoted to matrices (`a` gains a leading 1, `b` a trailing 1), batch axes
// broadcast, and the result shape with the promoted axes dropped again.
struct MatMulShape {
  Shape a, b;  // promoted operand shapes (rank >= 2)
  int64_t m = 0, k = 0, n = 0;
  Shape batch;
  std::vector<int64_t> a_index, b_index;  // per output batch: batch index into a and into b
  Shape out;
};
// Fails through `ctx` (naming both shapes) when the inner dimensions differ or the batch axes do
// not broadcast.
MatMulShape plan_matmul(const KernelContext& ctx, const Shape& a, const Shape& b);

// com.graft FusedMatMul: plan_matmul of the operands with their last two axes swapped where
// transposed, and its bias `c` (null when absent) one value per column of the product or a single
// value. Fails through `ctx` when the dtypes differ, a transposed operand has rank < 2, the
// shapes do not multiply, or C cannot be added to every row (a product of rank 0, K = 0).
MatMulShape plan_fused_matmul(const KernelContext& ctx, const Tensor& a, const Tensor& b,
                              const Tensor* c, bool trans_a, bool trans_b);

// Gemm: Y[m, n] = alpha * op(A) * op(B) + beta * C, with C broadcast to [m, n] unidirectionally.
struct GemmShape {
  int64_t m = 0, n = 0, k = 0;
  int64_t c_rows = 1, c_cols = 1;  // C as a matrix: [] and [n] are one row
};
// Fails through `ctx` when A or B is not 2-D, their dtypes or inner dims differ, or `c` (null when
// absent) has another dtype, rank > 2 or does not broadcast to [m, n].
GemmShape plan_gemm(const KernelContext& ctx, const Tensor& a, const Tensor& b, const Tensor* c,
                    bool trans_a, bool trans_b);

}  // namespace graft
