// graft._C.OrtValue (onnxruntime's OrtValue: a value in host or device memory held by Python) and
// the session run that takes and returns them, behind IOBinding and run_with_ort_values.
#include <pybind11/stl.h>
#include <pybind11/stl_bind.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "exec/device_exchange.h"
#include "exec/error.h"
#include "exec/session.h"
#include "python/src/convert.h"
#include "python/src/dlpack.h"
#include "python/src/ortvalue.h"

namespace graft::python {

namespace {

// The memory a device_type names: host memory for "cpu", device `id`'s for "cuda".
Allocator& memory_of(const std::string& device_type, int id) {
  if (device_type == "cpu") return cpu_allocator();
  if (device_type == "cuda") return device_exchange("cuda").memory(id);
  throw InvalidArgument("device_type must be 'cpu' or 'cuda', got '" + device_type + "'");
}

MemoryDevice device_of(const Tensor& t) {
  return t.on_host() ? MemoryDevice{} : t.buffer()->allocator()->device();
}

// Holds a Python object for a buffer, which may be released on a thread without the GIL.
std::shared_ptr<void> hold(py::object obj) {
  return std::shared_ptr<void>(obj.release().ptr(), [](void* p) {
    if (!Py_IsInitialized()) return;
    py::gil_scoped_acquire gil;
    Py_DECREF(static_cast<PyObject*>(p));
  });
}

// A host tensor over the array's memory when graft keeps elements as NumPy does; a copy otherwise
// (strings, sign-extended 4-bit and 2-bit integers).
Tensor host_tensor(int code, const py::array& array) {
  const auto dtype = static_cast<DType>(code);
  if (dtype == DType::String || dtype == DType::Int4 || dtype == DType::Int2)
    return value_from_py(py::make_tuple(code, array)).tensor();
  auto contiguous = py::array::ensure(array, py::array::c_style);
  if (!contiguous) throw InvalidArgument("expected a NumPy array");
  if (static_cast<size_t>(contiguous.itemsize()) != dtype_size(dtype)) {
    throw InvalidArgument("array item size " + std::to_string(contiguous.itemsize()) +
                          " does not match element type " + dtype_name(dtype));
  }
  const Shape shape(contiguous.shape(), contiguous.shape() + contiguous.ndim());
  void* data = const_cast<void*>(contiguous.data());
  return Tensor(dtype, shape, std::make_shared<Buffer>(data, hold(contiguous)));
}

OrtValue from_numpy(int code, const py::array& array, const std::string& device_type, int id) {
  Allocator& memory = memory_of(device_type, id);
  const Tensor host = host_tensor(code, array);
  return {Value(memory.on_host() ? host : host.to(memory))};
}

OrtValue from_shape_and_type(const Shape& shape, int code, const std::string& device_type, int id) {
  Allocator& memory = memory_of(device_type, id);
  Tensor t = Tensor::empty(static_cast<DType>(code), shape, memory);
  if (t.nbytes() > 0 && t.dtype() != DType::String) memory.fill(t.raw(), 0, t.nbytes());
  return {Value(std::move(t))};
}

// A tensor over memory the caller owns and keeps alive while graft uses it.
OrtValue from_pointer(uintptr_t address, int code, const Shape& shape,
                      const std::string& device_type, int id) {
  const auto dtype = static_cast<DType>(code);
  if (dtype == DType::String) throw InvalidArgument("a string tensor cannot be bound by address");
  auto* data = reinterpret_cast<void*>(address);
  if (data == nullptr && shape_size(shape) > 0) throw InvalidArgument("buffer_ptr is null");
  std::shared_ptr<void> unowned(data, [](void*) {});
  memory_of(device_type, id);  // checks the device
  if (device_type == "cuda")
    return {Value(device_exchange("cuda").wrap(data, dtype, shape, id, std::move(unowned)))};
  return {Value(Tensor(dtype, shape, std::make_shared<Buffer>(data, std::move(unowned))))};
}

// The value in device_type's memory: itself when it is there already.
OrtValue to_device(const OrtValue& v, const std::string& device_type, int id) {
  const Tensor& t = v.tensor();
  if (device_type == "cpu") return {Value(t.to_host())};
  const MemoryDevice at = device_of(t);
  if (at.type == device_type && at.id == id) return v;
  return {Value(t.to(memory_of(device_type, id)))};
}

// Copies `source`'s elements into `target`'s memory (a buffer bound for an output).
void copy_into(const OrtValue& source, const OrtValue& target, const std::string& name) {
  const Tensor& src = source.tensor();
  const Tensor& dst = target.tensor();
  if (src.dtype() != dst.dtype() || src.shape() != dst.shape()) {
    throw InvalidArgument("output '" + name + "' is a " + dtype_name(src.dtype()) +
                          " tensor of shape " + shape_to_string(src.shape()) +
                          ", but its bound buffer holds " + dtype_name(dst.dtype()) + " " +
                          shape_to_string(dst.shape()));
  }
  if (!dst.on_host()) {
    device_exchange(device_of(dst).type).copy_to(dst.raw(), src);
    return;
  }
  const Tensor host = src.to_host();
  if (src.dtype() == DType::String) {
    auto from = host.span<std::string>();
    auto to = dst.span<std::string>();
    std::copy(from.begin(), from.end(), to.begin());
  } else if (src.nbytes() > 0) {
    std::memcpy(dst.raw(), host.raw(), src.nbytes());
  }
}

// The ONNX type of a value, as NodeArg.type spells it: "tensor(float)", "seq(tensor(int64))",
// "map(string,tensor(float))", "optional(tensor(float))".
std::string type_name(Value::Kind kind, DType dtype, const Value* value) {
  const std::string tensor = std::string("tensor(") + dtype_name(dtype) + ")";
  switch (kind) {
    case Value::Kind::Tensor:
      return tensor;
    case Value::Kind::Sequence:
      if (value && value->elem_kind() == Value::Kind::Map && value->has_element())
        return "seq(" + type_name(Value::Kind::Map, dtype, &value->elements().front()) + ")";
      return "seq(" + tensor + ")";
    case Value::Kind::Map:
      return std::string("map(") + dtype_name(value->map_keys().dtype()) + ",tensor(" +
             dtype_name(value->map_values().dtype()) + "))";
    case Value::Kind::Optional:
      return "optional(" +
             (value && value->has_element()
                  ? type_name(value->elements().front().kind(), value->elem_dtype(),
                              &value->elements().front())
                  : type_name(value ? value->elem_kind() : Value::Kind::Tensor, dtype, nullptr)) +
             ")";
    case Value::Kind::None:
      break;
  }
  return "none";
}

}  // namespace

std::vector<OrtValue> run_with_values(InferenceSession& session,
                                      const std::vector<std::string>& output_names,
                                      const std::map<std::string, OrtValue>& feeds,
                                      bool outputs_on_device, const py::object& run_options) {
  std::map<std::string, Value> values;
  for (const auto& [name, v] : feeds) values[name] = v.value;
  RunOptions options = run_options_from_py(run_options);
  options.outputs_on_device = outputs_on_device;
  std::vector<Value> outs;
  {
    py::gil_scoped_release release;
    outs = session.run(output_names, values, options);
  }
  std::vector<OrtValue> result;
  for (auto& v : outs) result.push_back({std::move(v)});
  return result;
}

void init_iobinding(py::module_& m) {
  py::class_<OrtValue>(m, "OrtValue")
      .def_static("from_numpy", &from_numpy, py::arg("code"), py::arg("array"),
                  py::arg("device_type"), py::arg("device_id"))
      .def_static("from_shape_and_type", &from_shape_and_type, py::arg("shape"), py::arg("code"),
                  py::arg("device_type"), py::arg("device_id"))
      .def_static("from_pointer", &from_pointer, py::arg("address"), py::arg("code"),
                  py::arg("shape"), py::arg("device_type"), py::arg("device_id"))
      .def_static(
          "from_dlpack",
          [](const py::capsule& c, bool is_bool_tensor) {
            Tensor t = from_dlpack(c);
            if (is_bool_tensor) {
              if (t.dtype() != DType::UInt8 && t.dtype() != DType::Bool)
                throw InvalidArgument(std::string("is_bool_tensor: the DLPack tensor holds ") +
                                      dtype_name(t.dtype()) + ", not 8-bit integers");
              t = Tensor(DType::Bool, t.shape(), t.buffer());
            }
            return OrtValue{Value(std::move(t))};
          },
          py::arg("capsule"), py::arg("is_bool_tensor") = false)
      .def_static(
          "ortvalue_from_numpy",
          [](const py::array& array, const py::object& device) {
            const int code = py::module_::import("graft._types")
                                 .attr("code_of")(array.attr("dtype"))
                                 .cast<int>();
            return from_numpy(code, array, device.attr("name")().cast<std::string>(),
                              device.attr("device_id")().cast<int>());
          },
          py::arg("array"), py::arg("device"))
      .def("to_native", [](const OrtValue& v) { return value_to_py(v.value); })
      .def("numpy",
           [](const OrtValue& v) {
             return py::module_::import("graft.session").attr("_from_native")(value_to_py(v.value));
           })
      .def("is_tensor", [](const OrtValue& v) { return v.value.is_tensor(); })
      .def("type_name",
           [](const OrtValue& v) {
             const Value& x = v.value;
             return type_name(x.kind(), x.is_tensor() ? x.tensor().dtype() : x.elem_dtype(), &x);
           })
      .def("nbytes", [](const OrtValue& v) { return v.tensor().nbytes(); })
      .def("has_value", [](const OrtValue& v) { return v.value.kind() != Value::Kind::None; })
      .def("shape", [](const OrtValue& v) { return v.tensor().shape(); })
      .def("element_type", [](const OrtValue& v) { return static_cast<int>(v.tensor().dtype()); })
      .def("device",
           [](const OrtValue& v) {
             const MemoryDevice d = device_of(v.tensor());
             return py::make_tuple(d.type, d.id);
           })
      .def("data_ptr",
           [](const OrtValue& v) { return reinterpret_cast<uintptr_t>(v.tensor().raw()); })
      .def("to_device", &to_device, py::arg("device_type"), py::arg("device_id"))
      .def("copy_into", &copy_into, py::arg("target"), py::arg("name"))
      .def("synchronize",
           [](const OrtValue& v) {
             const Tensor& t = v.tensor();
             if (!t.on_host()) device_exchange(device_of(t).type).synchronize(t);
           })
      .def("dlpack_device", [](const OrtValue& v) { return dlpack_device(v.tensor()); })
      .def("__dlpack_device__", [](const OrtValue& v) { return dlpack_device(v.tensor()); })
      .def(
          "to_dlpack",
          [](const OrtValue& v, std::optional<int64_t> stream, bool versioned) {
            return to_dlpack(v.tensor(), stream, versioned);
          },
          py::arg("stream") = py::none(), py::arg("versioned") = false)
      .def(
          "__dlpack__",
          [](const OrtValue& v, std::optional<int64_t> stream,
             std::optional<std::pair<int, int>> max_version) {
            return to_dlpack(v.tensor(), stream, max_version && max_version->first >= 1);
          },
          py::kw_only(), py::arg("stream") = py::none(), py::arg("max_version") = py::none());

  py::bind_vector<std::vector<OrtValue>>(m, "OrtValueVector")
      .def("push_back", [](std::vector<OrtValue>& v, const OrtValue& x) { v.push_back(x); });

  m.def("is_dlpack_uint8_tensor", &dlpack_is_uint8, py::arg("capsule"));
  m.def("run_with_values", &run_with_values, py::arg("session"), py::arg("output_names"),
        py::arg("feeds"), py::arg("outputs_on_device"), py::arg("run_options") = py::none());
  m.def(
      "exchange_stream",
      [](const std::string& device_type, int id) {
        return device_exchange(device_type).stream(id);
      },
      py::arg("device_type"), py::arg("device_id"));
}

}  // namespace graft::python
