// How a collective node packs its inputs into one buffer, so that a bucket of N tensors costs one
// collective per dtype, not N: the inputs of each dtype in input order, each dtype's group
// starting on a 64-byte boundary. Shared by the CPU and CUDA collective kernels, which differ
// only in how the bytes are moved.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "exec/dtype.h"

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

}  // namespace graft::distributed
