// Helpers the backends share for reductions computed on the host.
#pragma once

#include <cstdint>

#include "exec/dtype.h"

namespace graft::distributed {

// Whether all_reduce and reduce_scatter accept the dtype: floats (float16 and bfloat16 included)
// and integers of 8 to 64 bits.
bool is_reducible(DType dtype);

// Divides `count` elements in place by `divisor`, in the element type (integers truncate).
void divide_in_place(void* data, int64_t count, DType dtype, int divisor);

}  // namespace graft::distributed
