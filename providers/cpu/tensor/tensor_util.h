// Helpers shared by the CPU provider's tensor-manipulation kernels: axis handling, element-type
// dispatch for data movement, and strided, concatenating and splitting copies.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "exec/dispatch.h"
#include "exec/movement_shapes.h"
#include "exec/tensor.h"

namespace graft::tensor_ops {

// Elements of 16 bytes (complex128), moved as a pair of words.
struct Bytes16 {
  uint64_t lo;
  uint64_t hi;
};

// Like dispatch_by_size, and also accepts 16-byte elements.
template <typename F>
decltype(auto) dispatch_copyable(DType dtype, const char* what, F&& f) {
  if (dtype != DType::String && dtype_size(dtype) == 16) return f(TypeTag<Bytes16>{});
  return dispatch_by_size(dtype, what, std::forward<F>(f));
}

// Axis normalization is shared with the other providers (exec/movement_shapes.h).
using ::graft::normalize_axis;

// Row-major strides, in elements.
inline std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

inline int64_t product(const Shape& shape, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= shape[i];
  return p;
}

constexpr int64_t kParallelElements = 1 << 16;

// Copies a 2-D tile: dst advances by `dst_row` per row i and 1 per column j; src advances by 1
// per row and `src_col` per column (a transposition).
template <typename T>
void copy_tile(T* dst, const T* src, int64_t rows, int64_t cols, int64_t dst_row, int64_t src_col) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) dst[i * dst_row + j] = src[i + j * src_col];
  }
}

// Writes the elements of `shape` in row-major order into `dst`; the element at index (i0, i1,
// ...) is read from src[i0 * strides[0] + i1 * strides[1] + ...]. Strides may be zero
// (broadcast) or negative (reversed slices).
template <typename T>
void strided_copy(T* dst, const T* src, const Shape& shape, const std::vector<int64_t>& strides) {
  const int64_t total = shape_size(shape);
  if (total == 0) return;
  // Drop unit dims and merge dims that are contiguous in the source.
  std::vector<int64_t> dims, st;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    if (!dims.empty() && st.back() == strides[i] * shape[i]) {
      dims.back() *= shape[i];
      st.back() = strides[i];
    } else {
      dims.push_back(shape[i]);
      st.push_back(strides[i]);
    }
  }
  if (dims.empty()) {
    dst[0] = src[0];
    return;
  }
  if (dims.size() == 1) {
    dims.insert(dims.begin(), 1);
    st.insert(st.begin(), 0);
  }
  const size_t nd = dims.size(), last = nd - 1;
  const int64_t inner = dims[last], inner_stride = st[last];
  const std::vector<int64_t> out_strides = contiguous_strides(dims);

  // A transposition: the source is contiguous along another dim `p`. Copy (p, last) tiles so
  // both sides stay in cache.
  size_t p = last;
  if (inner_stride != 1 && inner_stride != 0) {
    for (size_t d = 0; d < last; ++d) {
      if (st[d] == 1) p = d;
    }
  }
  if (p != last && inner >= 8 && dims[p] >= 8) {
    constexpr int64_t kTile = 32;
    const int64_t p_tiles = (dims[p] + kTile - 1) / kTile;
    const int64_t outer = total / (inner * dims[p]);
#pragma omp parallel for if (total > kParallelElements)
    for (int64_t task = 0; task < outer * p_tiles; ++task) {
      int64_t rem = task / p_tiles, src_offset = 0, dst_offset = 0;
      for (size_t d = last; d-- > 0;) {
        if (d == p) continue;
        src_offset += (rem % dims[d]) * st[d];
        dst_offset += (rem % dims[d]) * out_strides[d];
        rem /= dims[d];
      }
      const int64_t i0 = (task % p_tiles) * kTile, i1 = std::min(i0 + kTile, dims[p]);
      for (int64_t j0 = 0; j0 < inner; j0 += kTile) {
        copy_tile(dst + dst_offset + i0 * out_strides[p] + j0,
                  src + src_offset + i0 + j0 * inner_stride, i1 - i0, std::min(kTile, inner - j0),
                  out_strides[p], inner_stride);
      }
    }
    return;
  }

  // Runs along the last dim, the outer dims decoded once per block of rows.
  const int64_t rows = dims[nd - 2], row_stride = st[nd - 2];
  const int64_t blocks = total / (inner * rows);
#pragma omp parallel for if (total > kParallelElements && blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t rem = b, offset = 0;
    for (size_t d = nd - 2; d-- > 0;) {
      offset += (rem % dims[d]) * st[d];
      rem /= dims[d];
    }
    T* out = dst + b * rows * inner;
    for (int64_t r = 0; r < rows; ++r, out += inner) {
      const T* in = src + offset + r * row_stride;
      if (inner_stride == 1) {
        std::copy(in, in + inner, out);
      } else if (inner_stride == 0) {
        std::fill(out, out + inner, *in);
      } else {
        for (int64_t k = 0; k < inner; ++k) out[k] = in[k * inner_stride];
      }
    }
  }
}

// Copies `x` (already typed T) into a fresh tensor of `shape` through strided_copy.
template <typename T>
void strided_copy_into(Tensor& out, const Tensor& x, int64_t offset,
                       const std::vector<int64_t>& strides) {
  strided_copy(out.data<T>(), x.data<T>() + offset, out.shape(), strides);
}

// Concatenates `parts` along `axis` (normalized). All parts share the dtype and every dim but
// `axis` (concat_shape); ctx.fail() otherwise. Returns a fresh tensor.
inline Tensor concat_tensors(const KernelContext& ctx, const std::vector<Tensor>& parts,
                             int64_t axis) {
  const Shape out_shape = concat_shape(ctx, parts, axis);
  const Tensor& first = parts[0];
  Tensor out = Tensor::empty(first.dtype(), out_shape);
  const auto ax = static_cast<size_t>(axis);
  const int64_t outer = product(out_shape, 0, ax);
  const int64_t inner = product(out_shape, ax + 1, out_shape.size());
  const int64_t out_row = out_shape[ax] * inner;
  dispatch_copyable(first.dtype(), "Concat", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* dst = out.data<T>();
    int64_t column = 0;
    for (const Tensor& t : parts) {
      const int64_t row = t.dim(axis) * inner;
      const T* src = t.data<T>();
#pragma omp parallel for if (outer * row > kParallelElements)
      for (int64_t o = 0; o < outer; ++o) {
        std::copy(src + o * row, src + (o + 1) * row, dst + o * out_row + column);
      }
      column += row;
    }
  });
  return out;
}

// Splits `x` along `axis` (normalized) into pieces of `sizes` (non-negative, summing to the
// axis' dim). Returns fresh tensors.
inline std::vector<Tensor> split_tensor(const Tensor& x, int64_t axis,
                                        const std::vector<int64_t>& sizes) {
  const auto ax = static_cast<size_t>(axis);
  const int64_t outer = product(x.shape(), 0, ax);
  const int64_t inner = product(x.shape(), ax + 1, x.shape().size());
  const int64_t in_row = x.dim(axis) * inner;
  std::vector<Tensor> pieces;
  int64_t begin = 0;
  for (int64_t size : sizes) {
    Shape shape = x.shape();
    shape[ax] = size;
    Tensor piece = Tensor::empty(x.dtype(), shape);
    const int64_t row = size * inner;
    dispatch_copyable(x.dtype(), "Split", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>() + begin * inner;
      T* dst = piece.data<T>();
#pragma omp parallel for if (outer * row > kParallelElements)
      for (int64_t o = 0; o < outer; ++o) {
        std::copy(src + o * in_row, src + o * in_row + row, dst + o * row);
      }
    });
    begin += size;
    pieces.push_back(std::move(piece));
  }
  return pieces;
}

// Reads an optional 1-D (or scalar) integer input as int64 values; `fallback` when absent.
template <typename Ctx>
std::vector<int64_t> optional_ints(const Ctx& ctx, int i, std::vector<int64_t> fallback = {}) {
  if (!ctx.has_input(i)) return fallback;
  return ctx.input(i).to_int_vector();
}

}  // namespace graft::tensor_ops
