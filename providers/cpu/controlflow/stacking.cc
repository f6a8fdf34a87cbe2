#include "providers/cpu/controlflow/stacking.h"

#include <cstring>

#include "exec/error.h"

namespace graft {
namespace {

// Copies `count` elements of `dtype` (objects for strings, bytes otherwise).
void copy_elements(DType dtype, const void* src, void* dst, int64_t count) {
  if (dtype == DType::String) {
    const auto* s = static_cast<const std::string*>(src);
    auto* d = static_cast<std::string*>(dst);
    for (int64_t i = 0; i < count; ++i) d[i] = s[i];
  } else if (count > 0) {
    std::memcpy(dst, src, static_cast<size_t>(count) * dtype_size(dtype));
  }
}

}  // namespace

Tensor slice_along(const Tensor& t, int64_t axis, int64_t index) {
  Shape out_shape = t.shape();
  out_shape.erase(out_shape.begin() + axis);
  Tensor out(t.dtype(), out_shape);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= t.dim(i);
  for (int64_t i = axis + 1; i < t.rank(); ++i) inner *= t.dim(i);
  const size_t es = dtype_size(t.dtype());
  const auto* src = static_cast<const char*>(t.raw());
  auto* dst = static_cast<char*>(out.raw());
  for (int64_t o = 0; o < outer; ++o) {
    copy_elements(t.dtype(), src + static_cast<size_t>((o * t.dim(axis) + index) * inner) * es,
                  dst + static_cast<size_t>(o * inner) * es, inner);
  }
  return out;
}

Tensor stack_along(const std::vector<Tensor>& parts, int64_t axis) {
  const Tensor& first = parts.front();
  for (const auto& p : parts) {
    if (p.shape() != first.shape() || p.dtype() != first.dtype()) {
      throw InvalidArgument("scan outputs differ between iterations: " +
                            shape_to_string(first.shape()) + " vs " + shape_to_string(p.shape()));
    }
  }
  Shape out_shape = first.shape();
  out_shape.insert(out_shape.begin() + axis, static_cast<int64_t>(parts.size()));
  Tensor out(first.dtype(), out_shape);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= first.dim(i);
  for (int64_t i = axis; i < first.rank(); ++i) inner *= first.dim(i);
  const size_t es = dtype_size(first.dtype());
  const auto n = static_cast<int64_t>(parts.size());
  auto* dst = static_cast<char*>(out.raw());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < n; ++k) {
      copy_elements(first.dtype(),
                    static_cast<const char*>(parts[static_cast<size_t>(k)].raw()) +
                        static_cast<size_t>(o * inner) * es,
                    dst + static_cast<size_t>((o * n + k) * inner) * es, inner);
    }
  }
  return out;
}

}  // namespace graft
