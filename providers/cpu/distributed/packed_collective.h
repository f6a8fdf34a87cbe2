// Runs one collective per dtype over all of a node's inputs: the inputs of each dtype are packed
// into one contiguous buffer, so a bucket of N tensors costs one collective, not N.
#pragma once

#include <cstring>
#include <functional>
#include <vector>

#include "distributed/packing.h"
#include "exec/kernel.h"

namespace graft {

using distributed::PackedGroup;

// Packs every input into one new buffer, `packed` (laid out by distributed::pack_layout), and
// makes output i the view of input i's copy there. A collective that works on the groups in
// place so leaves its results in the outputs, with no copy back. Inputs and outputs correspond
// one to one.
inline std::vector<PackedGroup> pack_inputs(KernelContext& ctx, Tensor& packed) {
  if (ctx.num_outputs() != ctx.num_inputs()) {
    ctx.fail("has " + std::to_string(ctx.num_inputs()) + " inputs and " +
             std::to_string(ctx.num_outputs()) + " outputs; they correspond one to one");
  }
  std::vector<DType> dtypes;
  std::vector<size_t> nbytes;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor& x = ctx.input(i);
    if (x.dtype() == DType::String || dtype_size(x.dtype()) == 0)
      ctx.fail(std::string("cannot communicate elements of type ") + dtype_name(x.dtype()));
    dtypes.push_back(x.dtype());
    nbytes.push_back(x.nbytes());
  }
  size_t total = 0;
  std::vector<PackedGroup> groups = distributed::pack_layout(dtypes, nbytes, total);
  packed = Tensor::empty(DType::UInt8, {static_cast<int64_t>(total)});
  char* base = static_cast<char*>(packed.raw());
  for (const auto& g : groups) {
    size_t offset = g.offset;
    for (int i : g.members) {
      const Tensor& x = ctx.input(i);
      if (x.nbytes() > 0) std::memcpy(base + offset, x.raw(), x.nbytes());
      ctx.set_output(i, Value(Tensor(x.dtype(), x.shape(), packed.buffer(), offset)));
      offset += x.nbytes();
    }
  }
  return groups;
}

// pack_inputs, then `collective(data, count, dtype)` once per dtype on the packed buffer.
inline void run_packed_collective(KernelContext& ctx,
                                  const std::function<void(void*, int64_t, DType)>& collective) {
  Tensor packed;
  const auto groups = pack_inputs(ctx, packed);
  for (const auto& g : groups) {
    collective(static_cast<char*>(packed.raw()) + g.offset,
               static_cast<int64_t>(g.bytes / dtype_size(g.dtype)), g.dtype);
  }
}

}  // namespace graft
