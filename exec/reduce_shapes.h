// The shape rules of the reductions (Reduce*, ArgMax, ArgMin) and of the ops that work along an
// axis (Softmax, LogSoftmax, LayerNormalization and their gradients, the losses): which axes a
// reduction names, the shape it leaves, and the [outer, n, inner] view of a shape around one
// axis. Every provider's kernels for these ops use them, so each rule lives once.
#pragma once

#include "ir/api.h"

#include <cstdint>
#include <vector>

#include "exec/tensor.h"

namespace graft {

// Maps each of a reduction's `axes` from [-rank, rank) to [0, rank) in place (a scalar takes axis
// 0); returns false, leaving `axes` partly mapped, when one is out of range.
GRAFT_API bool normalize_reduce_axes(std::vector<int64_t>& axes, int64_t rank);

// The axes a Reduce* node reduces over, in place: `axes` normalized, or, when `axes` is empty,
// every axis (none with noop_with_empty_axes). Returns false when one is out of range.
GRAFT_API bool resolve_reduce_axes(std::vector<int64_t>& axes, int64_t rank,
                                   bool noop_with_empty_axes);

// `shape` reduced over `axes` (normalized; repeats allowed): each reduced dim becomes 1 with
// `keepdims` and is dropped without it.
GRAFT_API Shape reduced_shape(const Shape& shape, const std::vector<int64_t>& axes, bool keepdims);

// A shape seen as [outer, n, inner] around one axis.
struct AxisSplit {
  int64_t outer = 1;  // product of the dims before the axis
  int64_t n = 1;      // the axis' dim (with flatten, the product of it and every later dim)
  int64_t inner = 1;  // product of the dims after the axis (1 with flatten)
};

// `shape` around `axis` (normalized, 0 <= axis <= rank). With `flatten` the shape is first
// coerced to 2-D at `axis`, as Softmax did before opset 13 and LayerNormalization does.
GRAFT_API AxisSplit split_at_axis(const Shape& shape, int64_t axis, bool flatten);

// Where `axes` begin when they are the last axes of a rank-`rank` shape, in increasing order
// (each in [-rank, rank)), as LayerNormalization normalizes over them; -1 when they are not or
// when `axes` is empty.
GRAFT_API int64_t trailing_axes_start(const std::vector<int64_t>& axes, int64_t rank);

}  // namespace graft
