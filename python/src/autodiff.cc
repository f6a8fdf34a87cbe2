// Binding of the gradient-graph builder.
#include <pybind11/stl.h>

#include "autodiff/gradient.h"
#include "autodiff/rule.h"
#include "ir/serialize.h"
#include "python/src/convert.h"

namespace graft::python {

void init_autodiff(py::module_& m) {
  m.def(
      "gradient_model",
      [](const py::bytes& data, const std::string& loss, const std::vector<std::string>& wrt) {
        std::string bytes = data;
        std::string out;
        {
          py::gil_scoped_release release;
          ir::Model model = ir::load_model_from_bytes(bytes);
          out = ir::serialize_model(autodiff::build_gradient_graph(model, loss, wrt));
        }
        return py::bytes(out);
      },
      py::arg("model"), py::arg("loss"), py::arg("wrt"),
      "Serialized model -> serialized model that also outputs <wrt>_grad for each name.");
  m.def("gradient_rule_ops", []() {
    std::vector<std::tuple<std::string, std::string, int, int>> ops;
    for (const auto& d : autodiff::gradient_rules().defs())
      ops.emplace_back(d.domain, d.op_type, d.since, d.until);
    return ops;
  });
}

}  // namespace graft::python
