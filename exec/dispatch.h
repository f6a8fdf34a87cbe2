// Type dispatch helpers: turn a runtime DType into a C++ type for a generic kernel body.
#pragma once

#include "ir/api.h"

#include <stdexcept>
#include <string>

#include "exec/dtype.h"

namespace graft {

[[noreturn]] GRAFT_API void throw_unsupported_dtype(DType dtype, const char* what);

template <typename T>
struct TypeTag {
  using type = T;
};

// f(TypeTag<T>{}) for the dtypes below; `what` names the caller in the error for other types.
#define GRAFT_DISPATCH_CASE(code, type) \
  case DType::code:                     \
    return f(TypeTag<type>{});

// float, double, float16, bfloat16
template <typename F>
decltype(auto) dispatch_float(DType dtype, const char* what, F&& f) {
  switch (dtype) {
    GRAFT_DISPATCH_CASE(Float, float)
    GRAFT_DISPATCH_CASE(Double, double)
    GRAFT_DISPATCH_CASE(Float16, Float16)
    GRAFT_DISPATCH_CASE(BFloat16, BFloat16)
    default:
      throw_unsupported_dtype(dtype, what);
  }
}

// Integers of 8 to 64 bits, signed and unsigned.
template <typename F>
decltype(auto) dispatch_integer(DType dtype, const char* what, F&& f) {
  switch (dtype) {
    GRAFT_DISPATCH_CASE(Int8, int8_t)
    GRAFT_DISPATCH_CASE(Int16, int16_t)
    GRAFT_DISPATCH_CASE(Int32, int32_t)
    GRAFT_DISPATCH_CASE(Int64, int64_t)
    GRAFT_DISPATCH_CASE(UInt8, uint8_t)
    GRAFT_DISPATCH_CASE(UInt16, uint16_t)
    GRAFT_DISPATCH_CASE(UInt32, uint32_t)
    GRAFT_DISPATCH_CASE(UInt64, uint64_t)
    default:
      throw_unsupported_dtype(dtype, what);
  }
}

// Every float and integer type (not bool).
template <typename F>
decltype(auto) dispatch_number(DType dtype, const char* what, F&& f) {
  switch (dtype) {
    GRAFT_DISPATCH_CASE(Float, float)
    GRAFT_DISPATCH_CASE(Double, double)
    GRAFT_DISPATCH_CASE(Float16, Float16)
    GRAFT_DISPATCH_CASE(BFloat16, BFloat16)
    GRAFT_DISPATCH_CASE(Int8, int8_t)
    GRAFT_DISPATCH_CASE(Int16, int16_t)
    GRAFT_DISPATCH_CASE(Int32, int32_t)
    GRAFT_DISPATCH_CASE(Int64, int64_t)
    GRAFT_DISPATCH_CASE(UInt8, uint8_t)
    GRAFT_DISPATCH_CASE(UInt16, uint16_t)
    GRAFT_DISPATCH_CASE(UInt32, uint32_t)
    GRAFT_DISPATCH_CASE(UInt64, uint64_t)
    default:
      throw_unsupported_dtype(dtype, what);
  }
}

// Numbers and bool.
template <typename F>
decltype(auto) dispatch_numeric(DType dtype, const char* what, F&& f) {
  if (dtype == DType::Bool) return f(TypeTag<bool>{});
  return dispatch_number(dtype, what, std::forward<F>(f));
}

// Any type whose elements can be copied as bytes or objects, by element size. Used by data
// movement kernels (Transpose, Gather, Concat...) that never look at values. T is an unsigned
// integer of the element's width, or std::string.
template <typename F>
decltype(auto) dispatch_by_size(DType dtype, const char* what, F&& f) {
  if (dtype == DType::String) return f(TypeTag<std::string>{});
  switch (dtype_size(dtype)) {
    case 1:
      return f(TypeTag<uint8_t>{});
    case 2:
      return f(TypeTag<uint16_t>{});
    case 4:
      return f(TypeTag<uint32_t>{});
    case 8:
      return f(TypeTag<uint64_t>{});
    default:
      throw_unsupported_dtype(dtype, what);
  }
}

#undef GRAFT_DISPATCH_CASE

}  // namespace graft
