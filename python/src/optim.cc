// Binding of the optimizer-step builder.
#include <pybind11/stl.h>

#include "ir/error.h"
#include "ir/serialize.h"
#include "optim/optimizer.h"
#include "python/src/convert.h"

namespace graft::python {

void init_optim(py::module_& m) {
  m.def(
      "add_optimizer",
      [](const py::bytes& data, const std::vector<std::string>& params, const std::string& kind,
         float momentum, bool nesterov, float weight_decay, float beta1, float beta2, float epsilon,
         float lr_decay, float alpha, bool centered, float max_grad_norm) {
        optim::OptimizerConfig config;
        config.kind = optim::parse_kind(kind);
        config.lr_decay = lr_decay;
        config.alpha = alpha;
        config.centered = centered;
        config.max_grad_norm = max_grad_norm;
        config.momentum = momentum;
        config.nesterov = nesterov;
        config.weight_decay = weight_decay;
        config.beta1 = beta1;
        config.beta2 = beta2;
        config.epsilon = epsilon;
        std::string bytes = data;
        std::string out;
        {
          py::gil_scoped_release release;
          out = ir::serialize_model(
              optim::add_optimizer(ir::load_model_from_bytes(bytes), params, config));
        }
        return py::bytes(out);
      },
      py::arg("model"), py::arg("params"), py::arg("kind"), py::arg("momentum"),
      py::arg("nesterov"), py::arg("weight_decay"), py::arg("beta1"), py::arg("beta2"),
      py::arg("epsilon"), py::arg("lr_decay"), py::arg("alpha"), py::arg("centered"),
      py::arg("max_grad_norm") = 0.0f);
  m.def(
      "gradients_as_inputs",
      [](const py::bytes& data, const std::vector<std::string>& params) {
        return py::bytes(ir::serialize_model(
            optim::gradients_as_inputs(ir::load_model_from_bytes(std::string(data)), params)));
      },
      py::arg("model"), py::arg("params"),
      "The gradient model of an optimizer apart from backward: inputs \"gradient/<p>\" passed "
      "through as \"<p>_grad\", with the parameters' initializers.");
}

}  // namespace graft::python
