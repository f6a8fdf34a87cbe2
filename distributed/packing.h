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
  int64_t count() const { return static_cast<int64_t>(bytes / dtype_size(dtype)); }
};

// The layout of a collective node's inputs, which correspond one to one to its outputs; `total`
// receives the packed buffer's size. Fails with the node named for a count mismatch or an input
// that cannot be communicated (strings).
inline std::vector<PackedGroup> pack_layout(const KernelContext& ctx, size_t& total) {
  if (ctx.num_outputs() != ctx.num_inputs()) {
    ctx.fail("has " + std::to_string(ctx.num_inputs()) + " inputs and " +
             std::to_string(ctx.num_outputs()) + " outputs; they correspond one to one");
  }
  std::vector<PackedGroup> groups;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor& x = ctx.input(i);
    if (x.dtype() == DType::String || dtype_size(x.dtype()) == 0)
      ctx.fail(std::string("cannot communicate elements of type ") + dtype_name(x.dtype()));
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const PackedGroup& g) { return g.dtype == x.dtype(); });
    if (it == groups.end()) it = groups.insert(groups.end(), PackedGroup{x.dtype(), 0, 0, {}});
    it->members.push_back(i);
    it->bytes += x.nbytes();
  }
  total = 0;
  for (auto& g : groups) {
    g.offset = total;
    total += (g.bytes + 63) / 64 * 64;
  }
  return groups;
}

// Makes output i the view of `packed` at input i's place in `groups`, after calling
// `place(input, address)` for each input to move its bytes there.
template <typename Place>
void pack_into(KernelContext& ctx, const std::vector<PackedGroup>& groups, const Tensor& packed,
               Place place) {
  char* base = static_cast<char*>(packed.raw());
  for (const auto& g : groups) {
    size_t offset = g.offset;
    for (int i : g.members) {
      const Tensor& x = ctx.input(i);
      place(x, base + offset);
      ctx.set_output(i, Value(Tensor(x.dtype(), x.shape(), packed.buffer(), offset)));
      offset += x.nbytes();
    }
  }
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
