// Runs one collective per dtype over all of a node's inputs: the inputs of each dtype are packed
// into one contiguous buffer, so a bucket of N tensors costs one collective, not N.
#pragma once

#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "exec/kernel.h"

namespace graft {

// The inputs of one dtype, packed at `offset` bytes into the scratch buffer.
struct PackedGroup {
  DType dtype;
  size_t offset = 0;
  size_t bytes = 0;
  std::vector<int> members;  // input (and output) indices, in order
};

// Packs every input into `scratch` (grouped by dtype, in input order) and allocates output i
// with input i's shape and dtype; the outputs are returned in `outputs`. Inputs and outputs
// correspond one to one.
inline std::vector<PackedGroup> pack_inputs(KernelContext& ctx, std::vector<char>& scratch,
                                            std::vector<Tensor>& outputs) {
  if (ctx.num_outputs() != ctx.num_inputs()) {
    ctx.fail("has " + std::to_string(ctx.num_inputs()) + " inputs and " +
             std::to_string(ctx.num_outputs()) + " outputs; they correspond one to one");
  }
  std::vector<PackedGroup> groups;
  size_t total = 0;
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
    total += x.nbytes();
  }
  if (scratch.size() < total) scratch.resize(total);
  size_t offset = 0;
  for (auto& g : groups) {
    g.offset = offset;
    for (int i : g.members) {
      const Tensor& x = ctx.input(i);
      if (x.nbytes() > 0) std::memcpy(scratch.data() + offset, x.raw(), x.nbytes());
      offset += x.nbytes();
    }
  }
  outputs.clear();
  for (int i = 0; i < ctx.num_inputs(); ++i)
    outputs.push_back(ctx.output(i, ctx.input(i).dtype(), ctx.input(i).shape()));
  return groups;
}

// Copies each group's part of `scratch` back into its outputs.
inline void unpack_outputs(const std::vector<PackedGroup>& groups, const std::vector<char>& scratch,
                           std::vector<Tensor>& outputs) {
  for (const auto& g : groups) {
    size_t offset = g.offset;
    for (int i : g.members) {
      Tensor& y = outputs[static_cast<size_t>(i)];
      if (y.nbytes() > 0) std::memcpy(y.raw(), scratch.data() + offset, y.nbytes());
      offset += y.nbytes();
    }
  }
}

// pack_inputs, then `collective(data, count, dtype)` once per dtype, then unpack_outputs.
inline void run_packed_collective(KernelContext& ctx, std::vector<char>& scratch,
                                  const std::function<void(void*, int64_t, DType)>& collective) {
  std::vector<Tensor> outputs;
  const auto groups = pack_inputs(ctx, scratch, outputs);
  for (const auto& g : groups) {
    collective(scratch.data() + g.offset, static_cast<int64_t>(g.bytes / dtype_size(g.dtype)),
               g.dtype);
  }
  unpack_outputs(groups, scratch, outputs);
}

}  // namespace graft
