// graft._C.OrtValue (onnxruntime's OrtValue: a value in host or device memory held by Python) and
// the session run that takes and returns them, behind IOBinding and run_with_ort_values.
#include <pybind11/stl.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "exec/device_exchange.h"
#include "exec/error.h"
#include "exec/session.h"
#include "python/src/convert.h"
#include "python/src/dlpack.h"

namespace graft::python {
namespace {

struct OrtValue {
  Value value;

  const Tensor& tensor() const {
    if (!value.is_tensor()) throw InvalidArgument("the OrtValue does not hold a tensor");
    return value.tensor();
  }
};

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

std::vector<OrtValue> run_with_values(InferenceSession& session,
                                      const std::vector<std::string>& output_names,
                                      const std::map<std::string, OrtValue>& feeds,
                                      bool outputs_on_device) {
  std::map<std::string, Value> values;
  for (const auto& [name, v] : feeds) values[name] = v.value;
  RunOptions options;
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

}  // namespace

void init_iobinding(py::module_& m) {
  py::class_<OrtValue>(m, "OrtValue")
      .def_static("from_numpy", &from_numpy, py::arg("code"), py::arg("array"),
                  py::arg("device_type"), py::arg("device_id"))
      .def_static("from_shape_and_type", &from_shape_and_type, py::arg("shape"), py::arg("code"),
                  py::arg("device_type"), py::arg("device_id"))
      .def_static("from_pointer", &from_pointer, py::arg("address"), py::arg("code"),
                  py::arg("shape"), py::arg("device_type"), py::arg("device_id"))
      .def_static(
          "from_dlpack", [](const py::capsule& c) { return OrtValue{Value(from_dlpack(c))}; },
          py::arg("capsule"))
      .def("to_native", [](const OrtValue& v) { return value_to_py(v.value); })
      .def("is_tensor", [](const OrtValue& v) { return v.value.is_tensor(); })
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
      .def(
          "to_dlpack",
          [](const OrtValue& v, std::optional<int64_t> stream, bool versioned) {
            return to_dlpack(v.tensor(), stream, versioned);
          },
          py::arg("stream"), py::arg("versioned"));

  m.def("run_with_values", &run_with_values, py::arg("session"), py::arg("output_names"),
        py::arg("feeds"), py::arg("outputs_on_device"));
  m.def(
      "exchange_stream",
      [](const std::string& device_type, int id) {
        return device_exchange(device_type).stream(id);
      },
      py::arg("device_type"), py::arg("device_id"));
}

}  // namespace graft::python
