// How a collective node packs its inputs into one buffer, so that a bucket of N tensors costs one
// collective per dtype, not N: the inputs of each dtype in input order, each dtype's group
// starting on a 64-byte boundary. Shared by the CPU and CUDA collective kernels, which differ
// only in how the bytes are moved.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "exec/dtype.h"
#include "exec/kernel.h"

namespace graft::distributed {

// The inputs of one dtype, packed at `offset` bytes into the packed buffer.
struct PackedGroup {
  DType dtype;
  size_t offset = 0;
  size_t bytes = 0;
  std::vector<int> members;  // input (and output) indices, in order
};

// The groups for inputs of the given dtypes and sizes in bytes; `total` receives the packed
// buffer's size.
inline std::vector<PackedGroup> pack_layout(const std::vector<DType>& dtypes,
                                            const std::vector<size_t>& nbytes, size_t& total) {
  std::vector<PackedGroup> groups;
  for (size_t i = 0; i < dtypes.size(); ++i) {
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const PackedGroup& g) { return g.dtype == dtypes[i]; });
    if (it == groups.end()) it = groups.insert(groups.end(), PackedGroup{dtypes[i], 0, 0, {}});
    it->members.push_back(static_cast<int>(i));
    it->bytes += nbytes[i];
  }
  total = 0;
  for (auto& g : groups) {
    g.offset = total;
    total += (g.bytes + 63) / 64 * 64;
  }
  return groups;
}

// The layout for a collective node's inputs, which correspond one to one to its outputs; fails
// with the node named for a count mismatch or an input that cannot be communicated (strings).
inline std::vector<PackedGroup> pack_layout(const KernelContext& ctx, size_t& total) {
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
  return pack_layout(dtypes, nbytes, total);
}

// AllGather's output shape: X's with axis 0 times `ranks`.
inline Shape gathered_shape(const KernelContext& ctx, const Tensor& x, int ranks) {
  if (x.rank() == 0) ctx.fail("input X is a scalar; gathering is along axis 0");
  Shape shape = x.shape();
  shape[0] *= ranks;
  return shape;
}

// ReduceScatter's output shape: X's with axis 0 divided by `ranks`, which must divide it.
inline Shape scattered_shape(const KernelContext& ctx, const Tensor& x, int ranks) {
  if (x.rank() == 0) ctx.fail("input X is a scalar; scattering is along axis 0");
  if (x.dim(0) % ranks != 0) {
    ctx.fail("input X has " + std::to_string(x.dim(0)) + " rows, not a multiple of the " +
             std::to_string(ranks) + " ranks");
  }
  Shape shape = x.shape();
  shape[0] /= ranks;
  return shape;
}

}  // namespace graft::distributed
