// im2col and col2im over a window geometry (exec/window.h), for the CPU provider's Conv,
// ConvTranspose and their integer and deformable variants.
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "exec/kernel.h"
#include "exec/window.h"

namespace graft::cpu {

// Walks the window rows of an im2col matrix: for channel `c` and kernel position `kidx`, calls
// line(line_index, base, valid) for each line of the output (all output dims but the last),
// where `base` is the element offset of the input row it reads (valid only when `valid`), and
// hands the per-position offset along the last dim to the caller through `last_offset`.
template <typename F>
void for_each_window_line(const WindowGeometry& g, int64_t kidx, int64_t& last_offset, F&& line) {
  const size_t n = g.rank();
  std::array<int64_t, kMaxSpatialDims> koff{}, o{};
  for (size_t i = n; i-- > 0;) {
    koff[i] = (kidx % g.kernel[i]) * g.dilations[i] - g.pads[i];
    kidx /= g.kernel[i];
  }
  last_offset = koff[n - 1];
  int64_t lines = 1;
  for (size_t i = 0; i + 1 < n; ++i) lines *= g.out[i];
  for (int64_t l = 0; l < lines; ++l) {
    bool valid = true;
    int64_t base = 0;
    for (size_t i = 0; i + 1 < n; ++i) {
      const int64_t pos = o[i] * g.strides[i] + koff[i];
      valid = valid && pos >= 0 && pos < g.in[i];
      base = base * g.in[i] + pos;
    }
    line(l, base * g.in[n - 1], valid);
    for (size_t i = n - 1; i-- > 0;) {
      if (++o[i] < g.out[i]) break;
      o[i] = 0;
    }
  }
}

// The range [lo, hi) of last-dim output positions whose input position o * stride + offset lies
// inside [0, in).
inline void valid_range(const WindowGeometry& g, int64_t offset, int64_t& lo, int64_t& hi) {
  const size_t last = g.rank() - 1;
  const int64_t s = g.strides[last], out = g.out[last], in = g.in[last];
  lo = offset >= 0 ? 0 : (-offset + s - 1) / s;
  hi = in - offset <= 0 ? 0 : (in - offset + s - 1) / s;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
}

// col[channels * K, O] from x[channels, in...]: row (c, k) holds the input values under kernel
// position k for every output position (zero where the window is in the padding).
template <typename T>
void im2col(const T* x, int64_t channels, const WindowGeometry& g, T* col) {
  const int64_t kernel_size = shape_size(g.kernel), out_size = shape_size(g.out);
  const int64_t in_size = shape_size(g.in), out_last = g.out.back();
  const int64_t stride = g.strides.back();
  const int64_t rows = channels * kernel_size;
#pragma omp parallel for if (rows * out_size > (1 << 15) && !omp_in_parallel())
  for (int64_t row = 0; row < rows; ++row) {
    const T* xc = x + (row / kernel_size) * in_size;
    T* dst = col + row * out_size;
    int64_t offset = 0;
    for_each_window_line(g, row % kernel_size, offset, [&](int64_t l, int64_t base, bool valid) {
      T* d = dst + l * out_last;
      int64_t lo = 0, hi = 0;
      if (valid) valid_range(g, offset, lo, hi);
      std::fill(d, d + lo, T(0));
      const T* src = xc + base + offset;
      if (stride == 1)
        std::copy(src + lo, src + hi, d + lo);
      else
        for (int64_t j = lo; j < hi; ++j) d[j] = src[j * stride];
      std::fill(d + hi, d + out_last, T(0));
    });
  }
}

// The adjoint of im2col: y[channels, in...] += col scattered back to the input positions.
template <typename T>
void col2im(const T* col, int64_t channels, const WindowGeometry& g, T* y) {
  const int64_t kernel_size = shape_size(g.kernel), out_size = shape_size(g.out);
  const int64_t in_size = shape_size(g.in), out_last = g.out.back();
  const int64_t stride = g.strides.back();
#pragma omp parallel for if (channels * kernel_size * out_size > (1 << 15) && !omp_in_parallel())
  for (int64_t c = 0; c < channels; ++c) {
    T* yc = y + c * in_size;
    for (int64_t k = 0; k < kernel_size; ++k) {
      const T* src_row = col + (c * kernel_size + k) * out_size;
      int64_t offset = 0;
      for_each_window_line(g, k, offset, [&](int64_t l, int64_t base, bool valid) {
        if (!valid) return;
        int64_t lo = 0, hi = 0;
        valid_range(g, offset, lo, hi);
        const T* s = src_row + l * out_last;
        T* d = yc + base + offset;
        for (int64_t j = lo; j < hi; ++j) d[j * stride] += s[j];
      });
    }
  }
}

}  // namespace graft::cpu
