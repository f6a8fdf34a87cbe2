#include "python/src/convert.h"

#include <cstring>

#include "exec/error.h"

namespace graft::python {
namespace {

Tensor tensor_from_py(int code, const py::handle& arr_obj) {
  auto dtype = static_cast<DType>(code);
  if (dtype == DType::String) {
    auto arr = py::array::ensure(arr_obj);
    if (!arr) throw InvalidArgument("string tensor: expected a NumPy array");
    Shape shape(arr.shape(), arr.shape() + arr.ndim());
    Tensor t(dtype, shape);
    py::list flat = arr.attr("ravel")().attr("tolist")();
    auto* out = t.data<std::string>();
    for (size_t i = 0; i < flat.size(); ++i) {
      py::handle item = flat[i];
      if (py::isinstance<py::bytes>(item)) {
        out[i] = item.cast<std::string>();
      } else {
        out[i] = py::str(item).cast<std::string>();
      }
    }
    return t;
  }
  auto arr = py::array::ensure(arr_obj, py::array::c_style);
  if (!arr) throw InvalidArgument("expected a NumPy array");
  if (static_cast<size_t>(arr.itemsize()) != dtype_size(dtype)) {
    throw InvalidArgument(std::string("array item size ") + std::to_string(arr.itemsize()) +
                          " does not match element type " + dtype_name(dtype));
  }
  Shape shape(arr.shape(), arr.shape() + arr.ndim());
  // The copy overwrites every byte: allocate without the zero fill a new Tensor gets.
  const size_t bytes = static_cast<size_t>(shape_size(shape)) * dtype_size(dtype);
  Allocator& allocator = cpu_allocator();
  void* data = allocator.allocate(bytes);
  std::shared_ptr<void> owner(data, [&allocator, bytes](void* p) { allocator.release(p, bytes); });
  if (bytes > 0) std::memcpy(data, arr.data(), bytes);
  if (dtype == DType::Int4 || dtype == DType::Int2) {
    // ml_dtypes keeps only the low bits; graft holds sub-byte integers sign-extended.
    const int bits = dtype == DType::Int4 ? 4 : 2;
    auto* p = static_cast<uint8_t*>(data);
    for (size_t i = 0; i < bytes; ++i) {
      p[i] = static_cast<uint8_t>(static_cast<int8_t>(static_cast<uint8_t>(p[i] << (8 - bits))) >>
                                  (8 - bits));
    }
  }
  return Tensor(dtype, shape, std::make_shared<Buffer>(data, owner));
}

// NumPy format for dtypes NumPy has natively; raw unsigned storage for the rest.
std::string numpy_format(DType d) {
  switch (d) {
    case DType::Float:
      return "f4";
    case DType::Double:
      return "f8";
    case DType::Float16:
      return "f2";
    case DType::Int8:
      return "i1";
    case DType::Int16:
      return "i2";
    case DType::Int32:
      return "i4";
    case DType::Int64:
      return "i8";
    case DType::UInt8:
      return "u1";
    case DType::UInt16:
      return "u2";
    case DType::UInt32:
      return "u4";
    case DType::UInt64:
      return "u8";
    case DType::Bool:
      return "?";
    case DType::Complex64:
      return "c8";
    case DType::Complex128:
      return "c16";
    case DType::BFloat16:
      return "u2";
    default:
      return "u1";
  }
}

py::object tensor_to_py(const Tensor& device_or_host) {
  // A tensor in a device's memory (training state on a GPU) reaches NumPy as a host copy.
  const Tensor t = device_or_host.to_host();
  std::vector<py::ssize_t> shape(device_or_host.shape().begin(), device_or_host.shape().end());
  if (t.dtype() == DType::String) {
    py::array out(py::dtype("O"), shape);
    auto* dst = static_cast<PyObject**>(out.mutable_data());
    const auto* src = t.data<std::string>();
    for (int64_t i = 0; i < t.size(); ++i) {
      PyObject* s = PyUnicode_DecodeUTF8(src[i].data(), static_cast<Py_ssize_t>(src[i].size()),
                                         "surrogateescape");
      if (!s) throw py::error_already_set();
      Py_XDECREF(dst[i]);
      dst[i] = s;
    }
    return py::make_tuple(static_cast<int>(t.dtype()), out);
  }
  // The array shares the tensor's buffer; the capsule keeps it alive.
  auto* keep = new std::shared_ptr<Buffer>(t.buffer());
  py::capsule owner(keep, [](void* p) { delete static_cast<std::shared_ptr<Buffer>*>(p); });
  py::array out(py::dtype(numpy_format(t.dtype())), shape, t.raw(), owner);
  return py::make_tuple(static_cast<int>(t.dtype()), out);
}

}  // namespace

Value value_from_py(const py::handle& obj) {
  if (obj.is_none()) return Value();
  auto tup = obj.cast<py::tuple>();
  if (py::isinstance<py::int_>(tup[0])) return Value(tensor_from_py(tup[0].cast<int>(), tup[1]));
  auto tag = tup[0].cast<std::string>();
  if (tag == "seq") {
    std::vector<Value> items;
    for (auto item : tup[2].cast<py::list>()) items.push_back(value_from_py(item));
    return Value::sequence(std::move(items), static_cast<DType>(tup[1].cast<int>()));
  }
  if (tag == "map") {
    Value keys = value_from_py(tup[1]);
    Value values = value_from_py(tup[2]);
    return Value::map(keys.tensor(), values.tensor());
  }
  if (tag == "opt") {
    auto kind = tup[1].cast<std::string>() == "seq" ? Value::Kind::Sequence : Value::Kind::Tensor;
    return Value::optional(value_from_py(tup[3]), kind, static_cast<DType>(tup[2].cast<int>()));
  }
  throw InvalidArgument("unsupported input value");
}

py::object value_to_py(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::None:
      return py::none();
    case Value::Kind::Tensor:
      return tensor_to_py(v.tensor());
    case Value::Kind::Sequence: {
      py::list items;
      for (const auto& e : v.elements()) items.append(value_to_py(e));
      return py::make_tuple("seq", static_cast<int>(v.elem_dtype()), items);
    }
    case Value::Kind::Map:
      return py::make_tuple("map", tensor_to_py(v.map_keys()), tensor_to_py(v.map_values()));
    case Value::Kind::Optional:
      return py::make_tuple("opt", v.elem_kind() == Value::Kind::Sequence ? "seq" : "tensor",
                            static_cast<int>(v.elem_dtype()),
                            v.has_element() ? value_to_py(v.elements()[0]) : py::none());
  }
  return py::none();
}

}  // namespace graft::python
