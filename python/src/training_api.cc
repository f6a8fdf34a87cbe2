// Binding of the on-device-training objects (train/training_api.h): graft.training.api is a thin
// layer of names and conversions over these classes. The objects serialize their calls with
// their state's lock; every call that may wait for it runs without the GIL, so other Python
// threads go on meanwhile.
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>

#include "python/src/convert.h"
#include "train/training_api.h"

namespace graft::python {
namespace {

std::map<std::string, Value> feeds_from_py(const py::dict& feeds) {
  std::map<std::string, Value> values;
  for (auto item : feeds) values[item.first.cast<std::string>()] = value_from_py(item.second);
  return values;
}

py::list values_to_py(const std::vector<Value>& values) {
  py::list out;
  for (const auto& v : values) out.append(value_to_py(v));
  return out;
}

py::dict tensors_to_py(const std::map<std::string, Tensor>& tensors) {
  py::dict out;
  for (const auto& [name, t] : tensors) out[py::str(name)] = value_to_py(Value(t));
  return out;
}

// `read()` (a map of tensors) taken without the GIL, then converted.
template <typename Read>
py::dict tensors_to_py_without_gil(Read&& read) {
  std::map<std::string, Tensor> tensors;
  {
    py::gil_scoped_release release;
    tensors = read();
  }
  return tensors_to_py(tensors);
}

// The member function `f` bound to run without the GIL, for properties (which take no guard).
template <typename F>
py::cpp_function without_gil(F f) {
  return py::cpp_function(f, py::call_guard<py::gil_scoped_release>());
}

// `step` (a Module's train or eval step) on `feeds`, without the GIL while it runs.
template <typename Step>
py::list run_step(const py::dict& feeds, Step&& step) {
  auto values = feeds_from_py(feeds);
  std::vector<Value> outs;
  {
    py::gil_scoped_release release;
    outs = step(values);
  }
  return values_to_py(outs);
}

}  // namespace

void init_training_api(py::module_& m) {
  using training::CheckpointState;
  using training::LinearLRScheduler;
  using training::Module;
  using training::Optimizer;
  m.attr("INFERENCE_OUTPUTS_METADATA") = training::kInferenceOutputsMetadata;
  py::class_<CheckpointState>(m, "CheckpointState")
      .def(py::init([](const py::dict& tensors, int64_t step,
                       const std::map<std::string, std::string>& properties) {
             std::map<std::string, Tensor> parameters;
             for (auto item : tensors) {
               parameters[item.first.cast<std::string>()] =
                   value_from_py(item.second).tensor().clone();
             }
             return CheckpointState(std::move(parameters), step, properties);
           }),
           py::arg("tensors"), py::arg("step") = 0,
           py::arg("properties") = std::map<std::string, std::string>{})
      .def_static("load", &CheckpointState::load, py::arg("path"),
                  py::call_guard<py::gil_scoped_release>())
      .def("save", &CheckpointState::save, py::arg("path"),
           py::arg("include_optimizer_state") = false, py::call_guard<py::gil_scoped_release>())
      .def("parameters",
           [](const CheckpointState& s) {
             return tensors_to_py_without_gil([&] { return s.parameters(); });
           })
      .def("optimizer_state",
           [](const CheckpointState& s) {
             return tensors_to_py_without_gil([&] { return s.optimizer_state(); });
           })
      .def(
          "set_tensor",
          [](CheckpointState& s, const std::string& name, const py::object& value) {
            Tensor tensor = value_from_py(value).tensor();
            py::gil_scoped_release release;
            s.set_tensor(name, tensor);
          },
          py::arg("name"), py::arg("value"))
      .def_property_readonly("step", without_gil(&CheckpointState::step))
      .def("properties", &CheckpointState::properties, py::call_guard<py::gil_scoped_release>())
      .def("add_property", &CheckpointState::add_property, py::arg("name"), py::arg("value"),
           py::call_guard<py::gil_scoped_release>());

  // keep_alive: the Module reads the state at every step, the Optimizer the Module, the
  // scheduler the Optimizer; each keeps what it reads alive.
  py::class_<Module>(m, "Module")
      .def(py::init([](CheckpointState& state, const std::string& training_model,
                       const std::string& eval_model, std::optional<bool> data_parallel,
                       double bucket_mb, const py::object& session_options) {
             if (!(bucket_mb > 0))
               throw InvalidArgument("bucket_mb must be > 0, got " + std::to_string(bucket_mb));
             distributed::DataParallelOptions options;
             options.bucket_bytes =
                 std::max<size_t>(1, static_cast<size_t>(bucket_mb * 1024 * 1024));
             // A graft._C.SessionOptions (graft.SessionOptions._to_native()), or None: the
             // defaults.
             SessionOptions session = session_options.is_none()
                                          ? SessionOptions{}
                                          : session_options.cast<SessionOptions>();
             py::gil_scoped_release release;
             return std::make_unique<Module>(state, training_model, eval_model, session,
                                             data_parallel, options);
           }),
           py::arg("state"), py::arg("training_model"), py::arg("eval_model") = "",
           py::arg("data_parallel") = std::nullopt, py::arg("bucket_mb") = 25.0,
           py::arg("session_options") = py::none(), py::keep_alive<1, 2>())
      .def("train_step",
           [](Module& module, const py::dict& feeds) {
             return run_step(feeds, [&](const auto& values) { return module.train_step(values); });
           })
      .def("eval_step",
           [](Module& module, const py::dict& feeds) {
             return run_step(feeds, [&](const auto& values) { return module.eval_step(values); });
           })
      .def("lazy_reset_grad", &Module::lazy_reset_grad, py::call_guard<py::gil_scoped_release>())
      .def("gradients",
           [](const Module& module) {
             return tensors_to_py_without_gil([&] { return module.gradients(); });
           })
      .def("parameter_names", &Module::parameter_names)
      .def("frozen_parameter_names", &Module::frozen_parameter_names)
      .def("input_names", &Module::input_names, py::arg("training"))
      .def("output_names", &Module::output_names, py::arg("training"))
      .def_property_readonly("data_parallel", &Module::data_parallel)
      .def("export_model_for_inferencing", &Module::export_model_for_inferencing, py::arg("path"),
           py::arg("output_names"), py::call_guard<py::gil_scoped_release>());

  py::class_<Optimizer>(m, "Optimizer")
      .def(py::init([](Module& module, const std::string& optimizer_model, float learning_rate,
                       const py::object& session_options) {
             SessionOptions session = session_options.is_none()
                                          ? SessionOptions{}
                                          : session_options.cast<SessionOptions>();
             py::gil_scoped_release release;
             return std::make_unique<Optimizer>(module, optimizer_model, learning_rate, session);
           }),
           py::arg("module"), py::arg("optimizer_model"), py::arg("learning_rate") = 1e-3f,
           py::arg("session_options") = py::none(), py::keep_alive<1, 2>())
      .def("step", &Optimizer::step, py::call_guard<py::gil_scoped_release>())
      .def("set_learning_rate", &Optimizer::set_learning_rate, py::arg("learning_rate"),
           py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("learning_rate", without_gil(&Optimizer::learning_rate));

  py::class_<LinearLRScheduler>(m, "LinearLRScheduler")
      .def(py::init<Optimizer&, int64_t, int64_t, float>(), py::arg("optimizer"),
           py::arg("warmup_step_count"), py::arg("total_step_count"), py::arg("initial_lr"),
           py::keep_alive<1, 2>())
      .def("step", &LinearLRScheduler::step, py::call_guard<py::gil_scoped_release>())
      .def("factor", &LinearLRScheduler::factor, py::arg("step"))
      .def_property_readonly("warmup_step_count", &LinearLRScheduler::warmup_step_count)
      .def_property_readonly("total_step_count", &LinearLRScheduler::total_step_count)
      .def_property_readonly("initial_lr", &LinearLRScheduler::initial_lr);
}

}  // namespace graft::python
