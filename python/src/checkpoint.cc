// Binding of checkpoint save/load.
#include <pybind11/stl.h>

#include "python/src/convert.h"
#include "train/checkpoint.h"

namespace graft::python {

void init_checkpoint(py::module_& m) {
  m.def(
      "save_checkpoint",
      [](const std::string& path, const py::dict& tensors, int64_t step,
         const std::map<std::string, std::string>& properties) {
        Checkpoint c;
        c.step = step;
        c.properties = properties;
        for (auto item : tensors)
          c.tensors[item.first.cast<std::string>()] = value_from_py(item.second).tensor();
        py::gil_scoped_release release;
        save_checkpoint(c, path);
      },
      py::arg("path"), py::arg("tensors"), py::arg("step"), py::arg("properties"));
  m.def(
      "load_checkpoint",
      [](const std::string& path) {
        Checkpoint c;
        {
          py::gil_scoped_release release;
          c = load_checkpoint(path);
        }
        py::dict tensors;
        for (const auto& [name, t] : c.tensors) tensors[py::str(name)] = value_to_py(Value(t));
        return py::make_tuple(tensors, c.step, c.properties);
      },
      py::arg("path"));
}

}  // namespace graft::python
