#include "providers/cpu/reduction/reduce_engine.h"

#include <algorithm>

#include "exec/reduce_shapes.h"

namespace graft::cpu {

namespace {

// Offsets of every position of the sub-space spanned by `dims` (row-major over them) with the
// given element strides.
std::vector<int64_t> offsets_of(const std::vector<int64_t>& dims,
                                const std::vector<int64_t>& strides) {
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  std::vector<int64_t> offsets(static_cast<size_t>(count));
  std::vector<int64_t> index(dims.size(), 0);
  int64_t offset = 0;
  for (int64_t i = 0; i < count; ++i) {
    offsets[static_cast<size_t>(i)] = offset;
    for (size_t d = dims.size(); d-- > 0;) {
      offset += strides[d];
      if (++index[d] < dims[d]) break;
      offset -= strides[d] * dims[d];
      index[d] = 0;
    }
  }
  return offsets;
}

}  // namespace

ReducePlan make_reduce_plan(const Shape& in_shape, const std::vector<int64_t>& axes,
                            bool keepdims) {
  const size_t rank = in_shape.size();
  std::vector<bool> reduced(rank, false);
  for (int64_t axis : axes)
    if (axis >= 0 && static_cast<size_t>(axis) < rank) reduced[static_cast<size_t>(axis)] = true;
  std::vector<int64_t> strides(rank, 1);
  for (size_t d = rank; d-- > 1;) strides[d - 1] = strides[d] * in_shape[d];

  ReducePlan plan;
  size_t inner_start = rank;
  while (inner_start > 0 && !reduced[inner_start - 1]) --inner_start;
  // With nothing reduced the whole tensor is one inner block.
  if (std::none_of(reduced.begin(), reduced.end(), [](bool r) { return r; })) inner_start = 0;
  for (size_t d = inner_start; d < rank; ++d) plan.inner *= in_shape[d];
  std::vector<int64_t> outer_dims, outer_strides, reduce_dims, reduce_strides;
  for (size_t d = 0; d < inner_start; ++d) {
    (reduced[d] ? reduce_dims : outer_dims).push_back(in_shape[d]);
    (reduced[d] ? reduce_strides : outer_strides).push_back(strides[d]);
  }
  plan.outer_offsets = offsets_of(outer_dims, outer_strides);
  plan.reduce_offsets = offsets_of(reduce_dims, reduce_strides);
  plan.out_shape = reduced_shape(in_shape, axes, keepdims);
  return plan;
}

}  // namespace graft::cpu
