// Element types of graft tensors. The numeric values are ONNX's TensorProto.DataType codes, so a
// dtype travels through protobuf, Python and C without a table.
#pragma once

#include "ir/api.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace graft {

enum class DType : int32_t {
  Undefined = 0,
  Float = 1,
  UInt8 = 2,
  Int8 = 3,
  UInt16 = 4,
  Int16 = 5,
  Int32 = 6,
  Int64 = 7,
  String = 8,
  Bool = 9,
  Float16 = 10,
  Double = 11,
  UInt32 = 12,
  UInt64 = 13,
  Complex64 = 14,
  Complex128 = 15,
  BFloat16 = 16,
  Float8E4M3FN = 17,
  Float8E4M3FNUZ = 18,
  Float8E5M2 = 19,
  Float8E5M2FNUZ = 20,
  UInt4 = 21,
  Int4 = 22,
  Float4E2M1 = 23,
  Float8E8M0 = 24,
  UInt2 = 25,
  Int2 = 26,
};

// Bytes one element occupies in memory. Sub-byte types (int4, uint4, int2, uint2, float4e2m1)
// are held unpacked, one element per byte, as NumPy's ml_dtypes does; they are packed only in
// protobuf. Returns 0 for Undefined. String elements are std::string objects.
GRAFT_API size_t dtype_size(DType dtype);
// ONNX's spelling: "float", "int64", "bfloat16", "float8e4m3fn", ...
GRAFT_API const char* dtype_name(DType dtype);
GRAFT_API bool dtype_is_float(DType dtype);    // float, double, float16, bfloat16
GRAFT_API bool dtype_is_integer(DType dtype);  // signed and unsigned integers of 8 bits or more
GRAFT_API bool dtype_is_signed(DType dtype);
GRAFT_API bool dtype_is_sub_byte(DType dtype);  // int4, uint4, int2, uint2, float4e2m1
GRAFT_API bool dtype_is_float8(DType dtype);    // the float8 family and float4e2m1

// IEEE half and bfloat16, stored as raw bits; converted through float.
struct GRAFT_API Float16 {
  uint16_t bits = 0;
  Float16() = default;
  explicit Float16(float f);
  operator float() const;  // NOLINT(google-explicit-constructor): used in generic kernels
};

struct GRAFT_API BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  explicit BFloat16(float f);
  operator float() const;  // NOLINT(google-explicit-constructor)
};

// Conversions for the float8 and float4 formats, per the ONNX specification. `saturate` follows
// Cast's attribute: out-of-range values clamp to the largest finite value instead of becoming
// inf or NaN.
GRAFT_API uint8_t float_to_small_float(DType dtype, float value, bool saturate);
GRAFT_API float small_float_to_float(DType dtype, uint8_t bits);

}  // namespace graft
