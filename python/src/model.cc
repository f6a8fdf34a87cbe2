// Binding of model loading and saving (graft.load_model / save_model round trips).
#include "ir/serialize.h"
#include "python/src/convert.h"

namespace graft::python {

void init_model(py::module_& m) {
  m.def(
      "resave_model",
      [](const std::string& src, const std::string& dst) {
        py::gil_scoped_release release;
        ir::save_model(ir::load_model(src), dst);
      },
      py::arg("src"), py::arg("dst"),
      "Loads the model at `src` into graft's IR and saves it to `dst`.");
  m.def(
      "model_to_bytes",
      [](const py::bytes& data) {
        std::string bytes = data;
        std::string out;
        {
          py::gil_scoped_release release;
          out = ir::serialize_model(ir::load_model_from_bytes(bytes));
        }
        return py::bytes(out);
      },
      py::arg("data"), "Loads model bytes into graft's IR and serializes it back.");
}

}  // namespace graft::python
