// Copies between a plain 4-D float tensor [A, B, H, W] and the layouts with 16x16 blocks over A
// and B, b-major within a block, that oneDNN's convolutions keep weights and weight gradients in
// (OIhw16i16o, IOhw16i16o). They are AVX2 8x8 transposes; oneDNN 2.6's reorders for these
// layouts measured 1.2 (to) and 2.5 (from) times slower on 512x512x3x3 weights.
#pragma once

#include <cstdint>

namespace graft::cpu {

struct Blocked16 {
  int64_t dims[4];     // A, B, H, W; A and B are multiples of 16
  int64_t strides[4];  // the blocked layout's element strides for A / 16, B / 16, H and W
};

void copy_to_blocked(const Blocked16& layout, const float* plain, float* blocked);
void copy_from_blocked(const Blocked16& layout, const float* blocked, float* plain);

}  // namespace graft::cpu
