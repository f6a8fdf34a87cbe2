#include "python/src/dlpack.h"

#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "exec/device_exchange.h"

namespace graft::python {
namespace {

// The structs of dlpack.h (DLPack 1.0), which graft does not depend on.
constexpr int32_t kDLCPU = 1;
constexpr int32_t kDLCUDA = 2;
constexpr int32_t kDLCUDAHost = 3;

struct DLDevice {
  int32_t device_type;
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; may be null for row-major
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};
struct DLPackVersion {
  uint32_t major;
  uint32_t minor;
};
struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned* self);
  uint64_t flags;
  DLTensor dl_tensor;
};
static_assert(sizeof(DLTensor) == 48 && offsetof(DLManagedTensorVersioned, dl_tensor) == 32,
              "the DLPack structs must keep the C layout of dlpack.h");

constexpr const char* kLegacyName = "dltensor";
constexpr const char* kVersionedName = "dltensor_versioned";

// DLDataTypeCode values: kDLInt 0, kDLUInt 1, kDLFloat 2, kDLBfloat 4, kDLComplex 5, kDLBool 6,
// then the float8 types.
struct TypeCode {
  DType dtype;
  uint8_t code;
  uint8_t bits;
};
constexpr TypeCode kTypeCodes[] = {
    {DType::Float, 2, 32},
    {DType::Double, 2, 64},
    {DType::Float16, 2, 16},
    {DType::BFloat16, 4, 16},
    {DType::Int8, 0, 8},
    {DType::Int16, 0, 16},
    {DType::Int32, 0, 32},
    {DType::Int64, 0, 64},
    {DType::UInt8, 1, 8},
    {DType::UInt16, 1, 16},
    {DType::UInt32, 1, 32},
    {DType::UInt64, 1, 64},
    {DType::Bool, 6, 8},
    {DType::Complex64, 5, 64},
    {DType::Complex128, 5, 128},
    {DType::Float8E4M3FN, 10, 8},
    {DType::Float8E4M3FNUZ, 11, 8},
    {DType::Float8E5M2, 12, 8},
    {DType::Float8E5M2FNUZ, 13, 8},
    {DType::Float8E8M0, 14, 8},
};

DLDataType dl_type(DType dtype) {
  for (const auto& t : kTypeCodes)
    if (t.dtype == dtype) return {t.code, t.bits, 1};
  throw py::buffer_error(std::string("DLPack has no type for graft's ") + dtype_name(dtype) +
                         " tensors");
}

DType graft_type(DLDataType type) {
  for (const auto& t : kTypeCodes)
    if (t.code == type.code && t.bits == type.bits && type.lanes == 1) return t.dtype;
  throw py::buffer_error("graft has no element type for DLPack type code " +
                         std::to_string(type.code) + " of " + std::to_string(type.bits) +
                         " bits and " + std::to_string(type.lanes) + " lanes");
}

// What a capsule graft made holds: the tensor (its buffer), its dims and strides, and the struct
// the consumer sees.
template <class Managed>
struct Lent {
  Managed managed{};
  Tensor tensor;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;

  static void release(Managed* self) { delete static_cast<Lent*>(self->manager_ctx); }
};

// A capsule nobody consumed gives the tensor back; a consumed one was renamed "used_..." and its
// consumer calls the deleter.
template <class Managed>
void destroy_capsule(PyObject* capsule) {
  const char* name = std::is_same_v<Managed, DLManagedTensor> ? kLegacyName : kVersionedName;
  if (!PyCapsule_IsValid(capsule, name)) return;
  auto* managed = static_cast<Managed*>(PyCapsule_GetPointer(capsule, name));
  if (managed->deleter != nullptr) managed->deleter(managed);
}

template <class Managed>
py::capsule lend(const Tensor& tensor, DLDevice device, const char* name) {
  auto* lent = new Lent<Managed>();
  lent->tensor = tensor;
  lent->shape = tensor.shape();
  lent->strides.assign(lent->shape.size(), 1);
  for (size_t i = lent->shape.size(); i-- > 1;)
    lent->strides[i - 1] = lent->strides[i] * lent->shape[i];
  DLTensor& t = lent->managed.dl_tensor;
  t.data = tensor.raw();
  t.device = device;
  t.ndim = static_cast<int32_t>(lent->shape.size());
  t.dtype = dl_type(tensor.dtype());
  t.shape = lent->shape.data();
  t.strides = lent->strides.data();
  t.byte_offset = 0;
  lent->managed.manager_ctx = lent;
  lent->managed.deleter = &Lent<Managed>::release;
  if constexpr (std::is_same_v<Managed, DLManagedTensorVersioned>) lent->managed.version = {1, 0};
  PyObject* capsule = PyCapsule_New(&lent->managed, name, &destroy_capsule<Managed>);
  if (capsule == nullptr) {
    delete lent;
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::capsule>(capsule);
}

// Whether `t` is row-major without gaps (dims of size 1 may have any stride).
bool row_major(const DLTensor& t) {
  if (t.strides == nullptr) return true;
  int64_t expected = 1;
  for (int32_t i = t.ndim; i-- > 0;) {
    if (t.shape[i] == 0) return true;
    if (t.shape[i] != 1 && t.strides[i] != expected) return false;
    expected *= t.shape[i];
  }
  return true;
}

// Wraps the tensor of a capsule named `name` whose struct is `managed`; marks the capsule used.
template <class Managed>
Tensor take(PyObject* capsule, Managed* managed, const char* used_name) {
  const DLTensor& t = managed->dl_tensor;
  const DType dtype = graft_type(t.dtype);
  if (t.ndim < 0) throw py::buffer_error("DLPack tensor of negative rank");
  const Shape shape(t.shape, t.shape + t.ndim);
  if (!row_major(t))
    throw py::buffer_error("graft takes row-major DLPack tensors only: call .contiguous() first");
  const int32_t device = t.device.device_type;
  if (device != kDLCPU && device != kDLCUDA && device != kDLCUDAHost) {
    throw py::buffer_error(
        "graft takes DLPack tensors in host or CUDA device memory, not device type " +
        std::to_string(device));
  }
  // From here on the tensor is graft's: the producer's deleter runs with the last share of it.
  if (PyCapsule_SetName(capsule, used_name) != 0) throw py::error_already_set();
  std::shared_ptr<void> owner(managed, [](void* p) {
    auto* m = static_cast<Managed*>(p);
    if (m->deleter != nullptr) m->deleter(m);
  });
  void* data = static_cast<char*>(t.data) + t.byte_offset;
  if (device == kDLCUDA)
    return device_exchange("cuda").wrap(data, dtype, shape, t.device.device_id, std::move(owner));
  return Tensor(dtype, shape, std::make_shared<Buffer>(data, std::move(owner)));
}

}  // namespace

std::pair<int, int> dlpack_device(const Tensor& tensor) {
  if (tensor.on_host()) return {kDLCPU, 0};
  const MemoryDevice device = tensor.buffer()->allocator()->device();
  if (device.type == "cuda") return {kDLCUDA, device.id};
  throw py::buffer_error("DLPack has no device type for " + device.type + " memory");
}

py::capsule to_dlpack(const Tensor& tensor, std::optional<int64_t> stream, bool versioned) {
  const auto [type, id] = dlpack_device(tensor);
  dl_type(tensor.dtype());  // fails before any ordering for a type DLPack lacks
  if (type == kDLCUDA) {
    if (stream == 0) throw py::buffer_error("stream 0 is ambiguous for CUDA: pass 1 or 2");
    if (stream != -1) device_exchange("cuda").hand_over(tensor, stream.value_or(1));
  }
  const DLDevice device{type, id};
  return versioned ? lend<DLManagedTensorVersioned>(tensor, device, kVersionedName)
                   : lend<DLManagedTensor>(tensor, device, kLegacyName);
}

namespace {

const DLTensor& capsule_tensor(const py::capsule& capsule) {
  PyObject* obj = capsule.ptr();
  if (PyCapsule_IsValid(obj, kVersionedName))
    return static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(obj, kVersionedName))
        ->dl_tensor;
  if (PyCapsule_IsValid(obj, kLegacyName))
    return static_cast<DLManagedTensor*>(PyCapsule_GetPointer(obj, kLegacyName))->dl_tensor;
  PyErr_Clear();
  throw py::buffer_error("not an unused DLPack capsule");
}

}  // namespace

bool dlpack_is_uint8(const py::capsule& capsule) {
  const DLDataType type = capsule_tensor(capsule).dtype;
  return type.code == 1 && type.bits == 8 && type.lanes == 1;
}

Tensor from_dlpack(const py::capsule& capsule) {
  PyObject* obj = capsule.ptr();
  if (PyCapsule_IsValid(obj, kVersionedName)) {
    auto* managed =
        static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(obj, kVersionedName));
    if (managed->version.major > 1) {
      throw py::buffer_error("DLPack " + std::to_string(managed->version.major) + "." +
                             std::to_string(managed->version.minor) +
                             " is newer than graft reads (1.x)");
    }
    return take(obj, managed, "used_dltensor_versioned");
  }
  if (PyCapsule_IsValid(obj, kLegacyName))
    return take(obj, static_cast<DLManagedTensor*>(PyCapsule_GetPointer(obj, kLegacyName)),
                "used_dltensor");
  const char* name = PyCapsule_GetName(obj);
  PyErr_Clear();
  throw py::buffer_error(std::string("not an unused DLPack capsule (its name is '") +
                         (name ? name : "") + "')");
}

}  // namespace graft::python
