// What the CUDA provider's data movement kernels (tensor.h, generate.h, gather.h) share: elements
// moved as unsigned integers of their size (dispatch_device_bytes), so one instantiation serves
// every dtype of that size; the dims of a tensor and the index of a strided view as a device
// functor holds them; and the host inputs (KernelDef::host_inputs: a shape, axes, starts...) the
// kernels read on the host.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "exec/movement_shapes.h"
#include "providers/cuda/kernels/backend.h"

namespace graft::cuda {

// A 16-byte element (complex128), moved whole.
struct alignas(16) bytes16_t {
  uint64_t lo;
  uint64_t hi;
};

// f(TypeTag<U>{}) with U the unsigned integer (or bytes16_t) of the dtype's element size; strings
// have no device form.
template <typename F>
decltype(auto) dispatch_device_bytes(DType dtype, const char* what, F&& f) {
  if (dtype == DType::String) throw_unsupported_dtype(dtype, what);
  switch (dtype_size(dtype)) {
    case 1:
      return f(TypeTag<uint8_t>{});
    case 2:
      return f(TypeTag<uint16_t>{});
    case 4:
      return f(TypeTag<uint32_t>{});
    case 8:
      return f(TypeTag<uint64_t>{});
    case 16:
      return f(TypeTag<bytes16_t>{});
    default:
      throw_unsupported_dtype(dtype, what);
  }
}

// Every dtype but string (and undefined): what data movement takes.
inline const std::vector<DType> kDeviceMovableTypes = [] {
  std::vector<DType> types;
  for (int code = static_cast<int>(DType::Float); code <= static_cast<int>(DType::Int2); ++code) {
    if (static_cast<DType>(code) != DType::String) types.push_back(static_cast<DType>(code));
  }
  return types;
}();

// The index over a strided view with its unit dims dropped and the dims it reads contiguously
// merged: fewer divisions per element, and views of more than kMaxDims dims that collapse fit.
inline StridedIndex collapsed_index(const StridedView& view, const std::string& who) {
  Shape dims;
  std::vector<int64_t> strides;
  for (size_t d = 0; d < view.shape.size(); ++d) {
    if (view.shape[d] == 1) continue;
    if (!dims.empty() && strides.back() == view.strides[d] * view.shape[d]) {
      dims.back() *= view.shape[d];
      strides.back() = view.strides[d];
    } else {
      dims.push_back(view.shape[d]);
      strides.push_back(view.strides[d]);
    }
  }
  return strided_index(dims, strides, who);
}

// Dims and row-major element strides of a tensor of at most kMaxDims dims.
struct Dims {
  int rank = 0;
  int64_t dims[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
};

// The Dims of `shape`; fails naming the node past kMaxDims dims.
inline Dims dims_of(const KernelContext& ctx, const Shape& shape) {
  if (shape.size() > static_cast<size_t>(kMaxDims)) {
    ctx.fail("tensors of rank " + std::to_string(shape.size()) + " exceed the CUDA kernels' " +
             std::to_string(kMaxDims) + " dimensions");
  }
  Dims d;
  d.rank = static_cast<int>(shape.size());
  const std::vector<int64_t> strides = contiguous_strides(shape);
  for (size_t i = 0; i < shape.size(); ++i) {
    d.dims[i] = shape[i];
    d.strides[i] = strides[i];
  }
  return d;
}

// An input read on the host (KernelDef::host_inputs) as int64 values.
inline std::vector<int64_t> host_ints(const KernelContext& ctx, int i) {
  return ctx.input(i).to_int_vector();
}

// The optional host input `i` as int64 values; nullopt when absent.
inline std::optional<std::vector<int64_t>> optional_host_ints(const KernelContext& ctx, int i) {
  if (!ctx.has_input(i)) return std::nullopt;
  return host_ints(ctx, i);
}

}  // namespace graft::cuda
