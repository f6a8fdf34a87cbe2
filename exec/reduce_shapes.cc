#include "exec/reduce_shapes.h"

#include <algorithm>

namespace graft {

bool normalize_reduce_axes(std::vector<int64_t>& axes, int64_t rank) {
  for (int64_t& axis : axes) {
    if (axis < -rank || axis >= std::max<int64_t>(rank, 1)) return false;
    if (axis < 0) axis += rank;
  }
  return true;
}

bool resolve_reduce_axes(std::vector<int64_t>& axes, int64_t rank, bool noop_with_empty_axes) {
  if (!axes.empty()) return normalize_reduce_axes(axes, rank);
  if (!noop_with_empty_axes)
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  return true;
}

Shape reduced_shape(const Shape& shape, const std::vector<int64_t>& axes, bool keepdims) {
  Shape out;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) == axes.end())
      out.push_back(shape[d]);
    else if (keepdims)
      out.push_back(1);
  }
  return out;
}

AxisSplit split_at_axis(const Shape& shape, int64_t axis, bool flatten) {
  AxisSplit split;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    const int64_t dim = shape[static_cast<size_t>(d)];
    if (d < axis)
      split.outer *= dim;
    else if (d == axis || flatten)
      split.n *= dim;
    else
      split.inner *= dim;
  }
  return split;
}

int64_t trailing_axes_start(const std::vector<int64_t>& axes, int64_t rank) {
  if (axes.empty()) return -1;
  const int64_t start = rank - static_cast<int64_t>(axes.size());
  for (size_t k = 0; k < axes.size(); ++k) {
    const int64_t axis = axes[k];
    if (axis < -rank || axis >= rank) return -1;
    if ((axis < 0 ? axis + rank : axis) != start + static_cast<int64_t>(k)) return -1;
  }
  return start;
}

}  // namespace graft
