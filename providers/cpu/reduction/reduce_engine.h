// One reduction loop for every Reduce* op (and ArgMax/ArgMin): reduces a tensor over any set of
// axes. The input is seen as [outer, reduced, inner]: `inner` is the block of kept axes after the
// last reduced one (contiguous, so the innermost loop vectorizes), the other kept axes form
// `outer` and the reduced axes form `reduced`, each walked through a table of offsets.
#pragma once

#include <omp.h>

#include <cstdint>
#include <vector>

#include "exec/tensor.h"

namespace graft::cpu {

struct ReducePlan {
  Shape out_shape;                      // with or without the reduced axes, per keepdims
  int64_t inner = 1;                    // contiguous kept block
  std::vector<int64_t> outer_offsets;   // element offset of each outer position
  std::vector<int64_t> reduce_offsets;  // element offset of each reduced position
  int64_t reduce_count() const { return static_cast<int64_t>(reduce_offsets.size()); }
  int64_t out_count() const { return static_cast<int64_t>(outer_offsets.size()) * inner; }
};

// `axes` are already normalized to [0, rank) (normalize_reduce_axes of exec/reduce_shapes.h;
// duplicates are ignored).
ReducePlan make_reduce_plan(const Shape& in_shape, const std::vector<int64_t>& axes, bool keepdims);

// For every output element `o` (in row-major order of out_shape), starts from `init`, folds
// acc = step(acc, input_value, o) over the reduced positions and calls finish(o, acc).
template <typename Acc, typename T, typename Step, typename Finish>
void run_reduce(const ReducePlan& plan, const T* in, Acc init, Step step, Finish finish) {
  const int64_t outer = static_cast<int64_t>(plan.outer_offsets.size());
  const int64_t inner = plan.inner;
  const int64_t reduced = plan.reduce_count();
  const bool parallel =
      outer > 1 && outer * inner * (reduced + 1) > (1 << 16) && !omp_in_parallel();
#pragma omp parallel for if (parallel)
  for (int64_t o = 0; o < outer; ++o) {
    std::vector<Acc> acc(static_cast<size_t>(inner), init);
    const T* base = in + plan.outer_offsets[static_cast<size_t>(o)];
    for (int64_t r = 0; r < reduced; ++r) {
      const T* row = base + plan.reduce_offsets[static_cast<size_t>(r)];
      for (int64_t i = 0; i < inner; ++i)
        acc[static_cast<size_t>(i)] = step(acc[static_cast<size_t>(i)], row[i], o * inner + i);
    }
    for (int64_t i = 0; i < inner; ++i) finish(o * inner + i, acc[static_cast<size_t>(i)]);
  }
}

}  // namespace graft::cpu
