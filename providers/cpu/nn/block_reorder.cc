#include "providers/cpu/nn/block_reorder.h"

#include <immintrin.h>
#include <omp.h>

#include <type_traits>
#include <vector>

namespace graft::cpu {
namespace {

constexpr int64_t kBlock = 16;

// d[c][r] = s[r][c] for an 8x8 block: row r of the source starts at src(r), row c of the
// destination at dst(c).
template <class Src, class Dst>
inline void transpose8x8(Src src, Dst dst) {
  __m256 r0 = _mm256_loadu_ps(src(0)), r1 = _mm256_loadu_ps(src(1));
  __m256 r2 = _mm256_loadu_ps(src(2)), r3 = _mm256_loadu_ps(src(3));
  __m256 r4 = _mm256_loadu_ps(src(4)), r5 = _mm256_loadu_ps(src(5));
  __m256 r6 = _mm256_loadu_ps(src(6)), r7 = _mm256_loadu_ps(src(7));
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(dst(0), _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(dst(1), _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(dst(2), _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(dst(3), _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(dst(4), _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(dst(5), _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(dst(6), _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(dst(7), _mm256_permute2f128_ps(u3, u7, 0x31));
}

// dst(c)[r] = src(r)[c] for r < rows and c < cols: 8x8 blocks, then the ragged edges.
template <class Src, class Dst>
void transpose(int64_t rows, int64_t cols, Src src, Dst dst) {
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) {
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8)
      transpose8x8([&](int64_t i) { return src(r + i) + c; },
                   [&](int64_t j) { return dst(c + j) + r; });
    for (; c < cols; ++c) {
      float* d = dst(c);
      for (int64_t i = r; i < r + 8; ++i) d[i] = src(i)[c];
    }
  }
  for (; r < rows; ++r) {
    const float* s = src(r);
    for (int64_t c = 0; c < cols; ++c) dst(c)[r] = s[c];
  }
}

// One pass over the (A / 16, B / 16) block pairs. In the plain tensor a pair is 16 rows (one per
// index into A) of 16 * H * W contiguous floats, ordered (b, h, w); in the blocked layout each
// (h, w) holds a 16x16 block ordered (b, a). Each pair is one 16 x 16HW transpose.
// Plain and Blocked are const float* on the side read and float* on the side written.
template <class Plain, class Blocked>
void copy_blocks(const Blocked16& l, Plain plain, Blocked blocked) {
  constexpr bool kToBlocked = std::is_const_v<std::remove_pointer_t<Plain>>;
  const int64_t a_blocks = l.dims[0] / kBlock, b_blocks = l.dims[1] / kBlock;
  const int64_t w = l.dims[3], hw = l.dims[2] * w, plain_row = l.dims[1] * hw;
  const int64_t total = l.dims[0] * plain_row;
  // Where each (b, h, w) of a block pair starts its 16 values (over a) in the blocked layout.
  std::vector<int64_t> column_offset(static_cast<size_t>(kBlock * hw));
  for (int64_t b = 0; b < kBlock; ++b) {
    for (int64_t p = 0; p < hw; ++p) {
      column_offset[static_cast<size_t>(b * hw + p)] =
          (p / w) * l.strides[2] + (p % w) * l.strides[3] + b * kBlock;
    }
  }
  const int64_t* columns = column_offset.data();
#pragma omp parallel for collapse(2) if (total > (1 << 18) && !omp_in_parallel())
  for (int64_t ab = 0; ab < a_blocks; ++ab) {
    for (int64_t bb = 0; bb < b_blocks; ++bb) {
      Plain rows = plain + ab * kBlock * plain_row + bb * kBlock * hw;
      Blocked base = blocked + ab * l.strides[0] + bb * l.strides[1];
      // a rows of (b, h, w) in the plain tensor; (h, w, b) rows of 16 (over a) in the blocked.
      auto plain_at = [&](int64_t a) { return rows + a * plain_row; };
      auto column_at = [&](int64_t j) { return base + columns[j]; };
      if constexpr (kToBlocked)
        transpose(kBlock, kBlock * hw, plain_at, column_at);
      else
        transpose(kBlock * hw, kBlock, column_at, plain_at);
    }
  }
}

}  // namespace

void copy_to_blocked(const Blocked16& layout, const float* plain, float* blocked) {
  copy_blocks(layout, plain, blocked);
}

void copy_from_blocked(const Blocked16& layout, const float* blocked, float* plain) {
  copy_blocks(layout, plain, blocked);
}

}  // namespace graft::cpu
