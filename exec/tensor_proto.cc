#include "exec/tensor_proto.h"

#include <cstring>

#include "exec/error.h"
#include "onnx/onnx_pb.h"

namespace graft {
namespace {

// Bits per element in packed protobuf storage for sub-byte types.
int packed_bits(DType d) {
  switch (d) {
    case DType::Int4:
    case DType::UInt4:
    case DType::Float4E2M1:
      return 4;
    case DType::Int2:
    case DType::UInt2:
      return 2;
    default:
      return 8;
  }
}

// Unpacks little-endian packed sub-byte elements (first element in the lowest bits), sign
// extending the signed integer types.
void unpack(DType d, const uint8_t* packed, size_t packed_len, uint8_t* out, int64_t n) {
  int bits = packed_bits(d);
  int per_byte = 8 / bits;
  uint8_t mask = static_cast<uint8_t>((1u << bits) - 1);
  bool sign = d == DType::Int4 || d == DType::Int2;
  for (int64_t i = 0; i < n; ++i) {
    size_t byte = static_cast<size_t>(i / per_byte);
    if (byte >= packed_len) throw InvalidArgument("packed data is shorter than the tensor's shape");
    auto v = static_cast<uint8_t>((packed[byte] >> ((i % per_byte) * bits)) & mask);
    if (sign && (v & (1u << (bits - 1)))) v = static_cast<uint8_t>(v | ~mask);
    out[i] = v;
  }
}

}  // namespace

Tensor tensor_from_sparse_proto(const onnx::SparseTensorProto& p) {
  const std::string& name = p.values().name();
  const Tensor values = tensor_from_proto(p.values());
  const Tensor indices = tensor_from_proto(p.indices());
  const Shape dims(p.dims().begin(), p.dims().end());
  const int64_t count = values.size();
  auto fail = [&](const std::string& why) -> Tensor {
    throw InvalidArgument("sparse tensor '" + name + "': " + why);
  };
  if (indices.dtype() != DType::Int64) return fail("indices must be int64");
  const bool linear = indices.shape().size() == 1;
  if ((linear && indices.shape()[0] != count) ||
      (!linear && (indices.shape().size() != 2 || indices.shape()[0] != count ||
                   indices.shape()[1] != static_cast<int64_t>(dims.size())))) {
    return fail("indices of shape " + shape_to_string(indices.shape()) + " do not match " +
                std::to_string(count) + " values of a tensor of shape " + shape_to_string(dims));
  }
  Tensor dense(values.dtype(), dims);
  const int64_t total = dense.size();
  const int64_t* index = indices.data<int64_t>();
  const size_t width = dtype_size(values.dtype());
  for (int64_t k = 0; k < count; ++k) {
    int64_t at = 0;
    if (linear) {
      at = index[k];
    } else {
      for (size_t d = 0; d < dims.size(); ++d) {
        const int64_t i = index[k * static_cast<int64_t>(dims.size()) + static_cast<int64_t>(d)];
        if (i < 0 || i >= dims[d]) return fail("an index lies outside the dims");
        at = at * dims[d] + i;
      }
    }
    if (at < 0 || at >= total)
      return fail("index " + std::to_string(at) + " lies outside the dims");
    if (values.dtype() == DType::String) {
      dense.data<std::string>()[at] = values.data<std::string>()[k];
    } else {
      std::memcpy(static_cast<char*>(dense.raw()) + static_cast<size_t>(at) * width,
                  static_cast<const char*>(values.raw()) + static_cast<size_t>(k) * width, width);
    }
  }
  return dense;
}

Tensor tensor_from_proto(const onnx::TensorProto& p) {
  auto dtype = static_cast<DType>(p.data_type());
  const std::string what = "tensor '" + p.name() + "'";
  if (dtype == DType::Undefined) throw InvalidArgument(what + " has no data type");
  if (p.data_location() == onnx::TensorProto::EXTERNAL) {
    throw InvalidArgument(what + ": external data was not loaded");
  }
  Shape shape(p.dims().begin(), p.dims().end());
  for (int64_t d : shape) {
    if (d < 0) throw InvalidArgument(what + " has a negative dimension");
  }
  Tensor t(dtype, shape);
  const int64_t n = t.size();
  auto mismatch = [&](const char* field, int64_t got) {
    return InvalidArgument(what + ": " + field + " holds " + std::to_string(got) +
                           " elements but the shape " + shape_to_string(shape) + " needs " +
                           std::to_string(n));
  };
  if (dtype == DType::String) {
    if (p.string_data_size() != n) throw mismatch("string_data", p.string_data_size());
    auto* s = t.data<std::string>();
    for (int64_t i = 0; i < n; ++i) s[i] = p.string_data(static_cast<int>(i));
    return t;
  }
  if (p.has_raw_data()) {
    const std::string& raw = p.raw_data();
    if (dtype_is_sub_byte(dtype)) {
      unpack(dtype, reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), t.data<uint8_t>(), n);
      return t;
    }
    if (raw.size() != t.nbytes()) {
      throw InvalidArgument(what + ": raw_data has " + std::to_string(raw.size()) +
                            " bytes but the shape " + shape_to_string(shape) + " of " +
                            dtype_name(dtype) + " needs " + std::to_string(t.nbytes()));
    }
    if (n > 0) std::memcpy(t.raw(), raw.data(), raw.size());
    return t;
  }
  auto copy_field = [&](const auto& field, auto* out, const char* name) {
    if (static_cast<int64_t>(field.size()) != n) throw mismatch(name, field.size());
    for (int64_t i = 0; i < n; ++i)
      out[i] = static_cast<std::remove_pointer_t<decltype(out)>>(field[static_cast<int>(i)]);
  };
  switch (dtype) {
    case DType::Float:
      copy_field(p.float_data(), t.data<float>(), "float_data");
      break;
    case DType::Double:
      copy_field(p.double_data(), t.data<double>(), "double_data");
      break;
    case DType::Int64:
      copy_field(p.int64_data(), t.data<int64_t>(), "int64_data");
      break;
    case DType::UInt64:
      copy_field(p.uint64_data(), t.data<uint64_t>(), "uint64_data");
      break;
    case DType::UInt32:
      copy_field(p.uint64_data(), t.data<uint32_t>(), "uint64_data");
      break;
    case DType::Int32:
      copy_field(p.int32_data(), t.data<int32_t>(), "int32_data");
      break;
    case DType::Int16:
      copy_field(p.int32_data(), t.data<int16_t>(), "int32_data");
      break;
    case DType::UInt16:
    case DType::Float16:
    case DType::BFloat16:
      copy_field(p.int32_data(), t.data<uint16_t>(), "int32_data");
      break;
    case DType::Int8:
      copy_field(p.int32_data(), t.data<int8_t>(), "int32_data");
      break;
    case DType::Bool:
    case DType::UInt8:
    case DType::Float8E4M3FN:
    case DType::Float8E4M3FNUZ:
    case DType::Float8E5M2:
    case DType::Float8E5M2FNUZ:
    case DType::Float8E8M0:
      copy_field(p.int32_data(), t.data<uint8_t>(), "int32_data");
      break;
    case DType::Complex64: {
      if (p.float_data_size() != 2 * n) throw mismatch("float_data", p.float_data_size() / 2);
      if (n > 0) std::memcpy(t.raw(), p.float_data().data(), t.nbytes());
      break;
    }
    case DType::Complex128: {
      if (p.double_data_size() != 2 * n) throw mismatch("double_data", p.double_data_size() / 2);
      if (n > 0) std::memcpy(t.raw(), p.double_data().data(), t.nbytes());
      break;
    }
    default: {
      if (dtype_is_sub_byte(dtype)) {
        // Packed bytes, one per int32_data entry.
        std::string bytes;
        for (int v : p.int32_data()) bytes.push_back(static_cast<char>(v));
        unpack(dtype, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
               t.data<uint8_t>(), n);
        break;
      }
      throw InvalidArgument(what + " has unsupported element type " + dtype_name(dtype));
    }
  }
  return t;
}

void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p) {
  p->Clear();
  p->set_name(name);
  p->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.shape()) p->add_dims(d);
  if (t.dtype() == DType::String) {
    for (const auto& s : t.span<std::string>()) p->add_string_data(s);
    return;
  }
  if (dtype_is_sub_byte(t.dtype())) {
    int bits = packed_bits(t.dtype());
    int per_byte = 8 / bits;
    std::string packed(static_cast<size_t>((t.size() + per_byte - 1) / per_byte), '\0');
    auto* src = t.data<uint8_t>();
    for (int64_t i = 0; i < t.size(); ++i) {
      auto v = static_cast<uint8_t>(src[i] & ((1u << bits) - 1));
      packed[static_cast<size_t>(i / per_byte)] |= static_cast<char>(v << ((i % per_byte) * bits));
    }
    p->set_raw_data(std::move(packed));
    return;
  }
  p->set_raw_data(std::string(static_cast<const char*>(t.raw()), t.nbytes()));
}

DType elem_dtype_of(const onnx::TypeProto& type) {
  switch (type.value_case()) {
    case onnx::TypeProto::kTensorType:
      return static_cast<DType>(type.tensor_type().elem_type());
    case onnx::TypeProto::kSequenceType:
      return elem_dtype_of(type.sequence_type().elem_type());
    case onnx::TypeProto::kOptionalType:
      return elem_dtype_of(type.optional_type().elem_type());
    default:
      return DType::Undefined;
  }
}

}  // namespace graft
