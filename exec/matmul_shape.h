// The shapes of a MatMul-like product with NumPy's rules, shared by every provider's MatMul,
// FusedMatMul, MatMulInteger and QLinearMatMul.
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

}  // namespace graft
