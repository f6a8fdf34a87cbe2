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

// Whether pack_inputs scales a group of this dtype (float and double; other dtypes are copied
// as they are).
inline bool scaled_when_packed(DType dtype) {
  return dtype == DType::Float || dtype == DType::Double;
}

// Packs every input into one new buffer, `packed` (laid out by distributed::pack_layout), and
// makes output i the view of input i's copy there. A collective that works on the groups in
// place so leaves its results in the outputs, with no copy back. Inputs and outputs correspond
// one to one.
//
// With `scale` other than 1, scaled_when_packed inputs are multiplied by it on the way in (one
// pass over the bytes either way): an average over N ranks becomes a sum of inputs scaled by
// 1/N, with no division pass after the collective. (For N a power of two the two agree
// exactly; otherwise to rounding.)
inline std::vector<PackedGroup> pack_inputs(KernelContext& ctx, Tensor& packed,
                                            double scale = 1.0) {
  size_t total = 0;
  std::vector<PackedGroup> groups = distributed::pack_layout(ctx, total);
  packed = Tensor::empty(DType::UInt8, {static_cast<int64_t>(total)});
  distributed::pack_into(ctx, groups, packed, [scale](const Tensor& x, char* to) {
    const int64_t n = x.size();
    if (scale != 1.0 && x.dtype() == DType::Float) {
      const float* in = x.data<float>();
      float* out = reinterpret_cast<float*>(to);
      const auto s = static_cast<float>(scale);
      for (int64_t k = 0; k < n; ++k) out[k] = in[k] * s;
    } else if (scale != 1.0 && x.dtype() == DType::Double) {
      const double* in = x.data<double>();
      double* out = reinterpret_cast<double*>(to);
      for (int64_t k = 0; k < n; ++k) out[k] = in[k] * scale;
    } else if (x.nbytes() > 0) {
      std::memcpy(to, x.raw(), x.nbytes());
    }
  });
  return groups;
}

// pack_inputs, then `collective(data, count, dtype)` once per dtype on the packed buffer.
inline void run_packed_collective(KernelContext& ctx,
                                  const std::function<void(void*, int64_t, DType)>& collective) {
  Tensor packed;
  const auto groups = pack_inputs(ctx, packed);
  for (const auto& g : groups) {
    collective(static_cast<char*>(packed.raw()) + g.offset, g.count(), g.dtype);
  }
}

}  // namespace graft
