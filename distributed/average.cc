#include "distributed/average.h"

#include "exec/error.h"

namespace graft::distributed {
namespace {

template <typename T>
void divide(void* data, int64_t count, int divisor) {
  auto* p = static_cast<T*>(data);
  for (int64_t i = 0; i < count; ++i) p[i] = static_cast<T>(p[i] / static_cast<T>(divisor));
}

template <typename Half>
void divide_half(void* data, int64_t count, int divisor) {
  auto* p = static_cast<Half*>(data);
  const float scale = 1.0f / static_cast<float>(divisor);
  for (int64_t i = 0; i < count; ++i) p[i] = Half(static_cast<float>(p[i]) * scale);
}

}  // namespace

bool is_reducible(DType dtype) { return dtype_is_float(dtype) || dtype_is_integer(dtype); }

void divide_in_place(void* data, int64_t count, DType dtype, int divisor) {
  if (divisor == 1) return;
  switch (dtype) {
    case DType::Float:
      return divide<float>(data, count, divisor);
    case DType::Double:
      return divide<double>(data, count, divisor);
    case DType::Float16:
      return divide_half<Float16>(data, count, divisor);
    case DType::BFloat16:
      return divide_half<BFloat16>(data, count, divisor);
    case DType::Int8:
      return divide<int8_t>(data, count, divisor);
    case DType::Int16:
      return divide<int16_t>(data, count, divisor);
    case DType::Int32:
      return divide<int32_t>(data, count, divisor);
    case DType::Int64:
      return divide<int64_t>(data, count, divisor);
    case DType::UInt8:
      return divide<uint8_t>(data, count, divisor);
    case DType::UInt16:
      return divide<uint16_t>(data, count, divisor);
    case DType::UInt32:
      return divide<uint32_t>(data, count, divisor);
    case DType::UInt64:
      return divide<uint64_t>(data, count, divisor);
    default:
      throw InvalidArgument(std::string("cannot average elements of type ") + dtype_name(dtype));
  }
}

}  // namespace graft::distributed
