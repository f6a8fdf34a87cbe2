#include <cstdint>

#include "providers/cuda/batched_copy.h"

namespace graft::cuda {
namespace {

constexpr int kSegmentsPerLaunch = 64;
constexpr int kThreads = 256;

struct Segments {
  CopySegment segment[kSegmentsPerLaunch];
};

// Copies `bytes` from `src` to `dst` with words of type W; threads of the blocks of one segment
// stride over it.
template <typename W>
__device__ void copy_words(const char* src, char* dst, size_t bytes) {
  const size_t words = bytes / sizeof(W);
  const W* s = reinterpret_cast<const W*>(src);
  W* d = reinterpret_cast<W*>(dst);
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < words;
       i += stride)
    d[i] = s[i];
  // The tail that does not fill a word, by the first threads of the first block.
  const size_t done = words * sizeof(W);
  if (blockIdx.x == 0 && threadIdx.x < bytes - done)
    dst[done + threadIdx.x] = src[done + threadIdx.x];
}

// Block row y copies segment y; the widest word both ends are aligned to is used.
__global__ void copy_segments(Segments segments) {
  const CopySegment& seg = segments.segment[blockIdx.y];
  const char* src = static_cast<const char*>(seg.src);
  char* dst = static_cast<char*>(seg.dst);
  const auto both = reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst);
  if (both % 16 == 0) {
    copy_words<uint4>(src, dst, seg.bytes);
  } else if (both % 4 == 0) {
    copy_words<uint32_t>(src, dst, seg.bytes);
  } else {
    copy_words<unsigned char>(src, dst, seg.bytes);
  }
}

}  // namespace

cudaError_t batched_copy(const CopySegment* segments, size_t count, cudaStream_t stream) {
  size_t i = 0;
  while (i < count) {
    Segments batch{};
    size_t n = 0;
    size_t largest = 0;
    for (; i < count && n < kSegmentsPerLaunch; ++i) {
      if (segments[i].bytes == 0) continue;
      batch.segment[n++] = segments[i];
      largest = segments[i].bytes > largest ? segments[i].bytes : largest;
    }
    if (n == 0) continue;
    // Enough blocks that the largest segment gets one 16-byte word per thread, up to 1024 per
    // segment (they stride over the rest).
    size_t blocks = (largest / 16 + kThreads - 1) / kThreads;
    blocks = blocks < 1 ? 1 : (blocks > 1024 ? 1024 : blocks);
    copy_segments<<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(n)), kThreads, 0,
                    stream>>>(batch);
    const cudaError_t error = cudaGetLastError();
    if (error != cudaSuccess) return error;
  }
  return cudaSuccess;
}

}  // namespace graft::cuda
