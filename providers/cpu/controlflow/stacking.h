// Slicing and stacking along one axis, for the Loop and Scan kernels' scan values.
#pragma once

#include <vector>

#include "exec/tensor.h"

namespace graft {

// The slice `index` of `t` along `axis`, with that axis removed.
Tensor slice_along(const Tensor& t, int64_t axis, int64_t index);
// Stacks same-shaped tensors along a new axis `axis` (0 <= axis <= rank). `parts` must not be
// empty; throws InvalidArgument when their shapes or dtypes differ.
Tensor stack_along(const std::vector<Tensor>& parts, int64_t axis);

}  // namespace graft
