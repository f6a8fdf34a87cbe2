// Runs one collective per dtype over all of a node's inputs: the inputs of each dtype are packed
// into one contiguous buffer, so a bucket of N tensors costs one collective, not N.
#pragma once

#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "exec/kernel.h"

namespace graft {

// Packs every input into `scratch` (grouped by dtype, in input order), calls
// `collective(data, count, dtype)` once per dtype, and unpacks the result into output i, which has
// input i's shape and dtype. Inputs and outputs correspond one to one.
inline void run_packed_collective(KernelContext& ctx, std::vector<char>& scratch,
                                  const std::function<void(void*, int64_t, DType)>& collective) {
  if (ctx.num_outputs() != ctx.num_inputs()) {
    ctx.fail("has " + std::to_string(ctx.num_inputs()) + " inputs and " +
             std::to_string(ctx.num_outputs()) + " outputs; they correspond one to one");
  }
  std::vector<DType> dtypes;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const DType dtype = ctx.input(i).dtype();
    if (std::find(dtypes.begin(), dtypes.end(), dtype) == dtypes.end()) dtypes.push_back(dtype);
  }
  for (DType dtype : dtypes) {
    const size_t element = dtype_size(dtype);
    if (dtype == DType::String || element == 0)
      ctx.fail(std::string("cannot communicate elements of type ") + dtype_name(dtype));
    size_t total = 0;
    for (int i = 0; i < ctx.num_inputs(); ++i)
      if (ctx.input(i).dtype() == dtype) total += ctx.input(i).nbytes();
    if (scratch.size() < total) scratch.resize(total);
    size_t offset = 0;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor& x = ctx.input(i);
      if (x.dtype() != dtype) continue;
      if (x.nbytes() > 0) std::memcpy(scratch.data() + offset, x.raw(), x.nbytes());
      offset += x.nbytes();
    }
    collective(scratch.data(), static_cast<int64_t>(total / element), dtype);
    offset = 0;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor& x = ctx.input(i);
      if (x.dtype() != dtype) continue;
      Tensor& y = ctx.output(i, dtype, x.shape());
      if (x.nbytes() > 0) std::memcpy(y.raw(), scratch.data() + offset, x.nbytes());
      offset += x.nbytes();
    }
  }
}

}  // namespace graft
