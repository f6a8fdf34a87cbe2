// Runs one collective per dtype over all of a node's inputs: the inputs of each dtype are packed
// into one contiguous buffer, so a bucket of N tensors costs one collective, not N.
#pragma once

#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "exec/kernel.h"

namespace graft {

// The inputs of one dtype, packed at `offset` bytes into the packed buffer.
struct PackedGroup {
  DType dtype;
  size_t offset = 0;
  size_t bytes = 0;
  std::vector<int> members;  // input (and output) indices, in order
};

// Packs every input into one new buffer, `packed` (grouped by dtype, in input order, each group
// starting on a 64-byte boundary), and makes output i the view of input i's copy there. A
// collective that works on the groups in place so leaves its results in the outputs, with no
// copy back. Inputs and outputs correspond one to one.
inline std::vector<PackedGroup> pack_inputs(KernelContext& ctx, Tensor& packed) {
  if (ctx.num_outputs() != ctx.num_inputs()) {
    ctx.fail("has " + std::to_string(ctx.num_inputs()) + " inputs and " +
             std::to_string(ctx.num_outputs()) + " outputs; they correspond one to one");
  }
  std::vector<PackedGroup> groups;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor& x = ctx.input(i);
    const DType dtype = x.dtype();
    if (dtype == DType::String || dtype_size(dtype) == 0)
      ctx.fail(std::string("cannot communicate elements of type ") + dtype_name(dtype));
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const PackedGroup& g) { return g.dtype == dtype; });
    if (it == groups.end()) it = groups.insert(groups.end(), PackedGroup{dtype, 0, 0, {}});
    it->members.push_back(i);
    it->bytes += x.nbytes();
  }
  size_t total = 0;
  for (auto& g : groups) {
    g.offset = total;
    total += (g.bytes + 63) / 64 * 64;
  }
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
