// Binding of TrainingSession. A session serializes its calls with a lock of its own
// (train/training_session.h); every call that may wait for it runs without the GIL, so other
// Python threads go on meanwhile.
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>

#include "exec/generator.h"
#include "ir/serialize.h"
#include "python/src/convert.h"
#include "train/training_api.h"
#include "train/training_session.h"

namespace graft::python {

using ProviderOptionsByName = std::map<std::string, std::map<std::string, std::string>>;

namespace {

// The member function `f` bound to run without the GIL, for properties (which take no guard).
template <typename F>
py::cpp_function without_gil(F f) {
  return py::cpp_function(f, py::call_guard<py::gil_scoped_release>());
}

}  // namespace

void init_training(py::module_& m) {
  m.def(
      "seed", [](uint64_t value) { default_generator().seed(value); }, py::arg("value"),
      "Seeds the generator unseeded Dropout and Random* nodes draw from.");
  m.def("get_rng_state", [] { return default_generator().state(); });
  m.def(
      "set_rng_state", [](const std::string& state) { default_generator().set_state(state); },
      py::arg("state"));
  // The running-statistics rewrites TrainingSession makes, for generate_artifacts.
  m.def(
      "updated_statistics",
      [](const py::bytes& data) {
        return training::updated_statistics(ir::load_model_from_bytes(std::string(data)));
      },
      py::arg("model"),
      "The BatchNormalization running statistics a training step of the serialized model updates.");
  m.def(
      "expose_running_statistics",
      [](const py::bytes& data, const std::vector<std::string>& stats) {
        ir::Model model = ir::load_model_from_bytes(std::string(data));
        training::expose_running_statistics(model, stats, false);
        return py::bytes(ir::serialize_model(model));
      },
      py::arg("model"), py::arg("stats"),
      "The serialized model with each statistic an input and its new value the output "
      "\"<statistic>.new\".");
  m.def(
      "in_inference_mode",
      [](const py::bytes& data) {
        return py::bytes(ir::serialize_model(
            training::in_inference_mode(ir::load_model_from_bytes(std::string(data)))));
      },
      py::arg("model"),
      "The serialized model with its training-mode BatchNormalization nodes in inference mode.");
  py::class_<TrainingSession>(m, "TrainingSession")
      .def(py::init([](const py::bytes& data, const std::string& loss,
                       const std::vector<std::string>& params, const std::string& kind, float lr,
                       float momentum, bool nesterov, float weight_decay, float beta1, float beta2,
                       float epsilon, float lr_decay, float alpha, bool centered,
                       float max_grad_norm, int intra_op_num_threads,
                       std::optional<bool> data_parallel, double bucket_mb, int zero_stage,
                       const std::string& optimized_model_filepath, bool enable_profiling,
                       const std::string& profile_file_prefix,
                       const std::vector<std::string>& providers,
                       const std::string& mixed_precision, float loss_scale, int growth_interval,
                       const ProviderOptionsByName& provider_options) {
             if (max_grad_norm < 0)
               throw InvalidArgument("max_grad_norm must be >= 0 (0 disables clipping), got " +
                                     std::to_string(max_grad_norm));
             if (intra_op_num_threads < 0)
               throw InvalidArgument("intra_op_num_threads must be >= 0 (0: all cores), got " +
                                     std::to_string(intra_op_num_threads));
             if (!(bucket_mb > 0))
               throw InvalidArgument("bucket_mb must be > 0, got " + std::to_string(bucket_mb));
             TrainingOptions o;
             o.loss = loss;
             o.params = params;
             o.learning_rate = lr;
             o.optimizer.kind = optim::parse_kind(kind);
             o.optimizer.momentum = momentum;
             o.optimizer.nesterov = nesterov;
             o.optimizer.weight_decay = weight_decay;
             o.optimizer.beta1 = beta1;
             o.optimizer.beta2 = beta2;
             o.optimizer.epsilon = epsilon;
             o.optimizer.lr_decay = lr_decay;
             o.optimizer.alpha = alpha;
             o.optimizer.centered = centered;
             o.optimizer.max_grad_norm = max_grad_norm;
             o.session.intra_op_num_threads = intra_op_num_threads;
             o.session.optimized_model_filepath = optimized_model_filepath;
             o.session.enable_profiling = enable_profiling;
             o.session.profile_file_prefix = profile_file_prefix;
             o.data_parallel = data_parallel;
             o.zero_stage = zero_stage;
             o.providers = providers;
             o.session.provider_options = provider_options;
             if (!mixed_precision.empty()) {
               if (mixed_precision != dtype_name(DType::Float16) &&
                   mixed_precision != dtype_name(DType::BFloat16))
                 throw InvalidArgument("mixed_precision must be 'float16' or 'bfloat16', got '" +
                                       mixed_precision + "'");
               o.mixed_precision.compute =
                   mixed_precision == dtype_name(DType::Float16) ? DType::Float16 : DType::BFloat16;
             }
             if (!(loss_scale > 0))
               throw InvalidArgument("loss_scale must be > 0, got " + std::to_string(loss_scale));
             if (growth_interval < 1)
               throw InvalidArgument("growth_interval must be >= 1, got " +
                                     std::to_string(growth_interval));
             o.mixed_precision.init_scale = loss_scale;
             o.mixed_precision.growth_interval = growth_interval;
             o.data_parallel_options.bucket_bytes =
                 std::max<size_t>(1, static_cast<size_t>(bucket_mb * 1024 * 1024));
             std::string bytes = data;
             py::gil_scoped_release release;
             return std::make_unique<TrainingSession>(ir::load_model_from_bytes(bytes), o);
           }),
           py::arg("model"), py::arg("loss"), py::arg("params"), py::arg("kind"), py::arg("lr"),
           py::arg("momentum"), py::arg("nesterov"), py::arg("weight_decay"), py::arg("beta1"),
           py::arg("beta2"), py::arg("epsilon"), py::arg("lr_decay") = 0.0f,
           py::arg("alpha") = 0.99f, py::arg("centered") = false, py::arg("max_grad_norm") = 0.0f,
           py::arg("intra_op_num_threads") = 0, py::arg("data_parallel") = std::nullopt,
           py::arg("bucket_mb") = 25.0, py::arg("zero_stage") = 0,
           py::arg("optimized_model_filepath") = "", py::arg("enable_profiling") = false,
           py::arg("profile_file_prefix") = "graft_training_profile",
           py::arg("providers") = std::vector<std::string>{}, py::arg("mixed_precision") = "",
           py::arg("loss_scale") = 65536.0f, py::arg("growth_interval") = 2000,
           py::arg("provider_options") = ProviderOptionsByName{})
      .def("train_step",
           [](TrainingSession& s, const py::dict& feeds) {
             std::map<std::string, Value> values;
             for (auto item : feeds)
               values[item.first.cast<std::string>()] = value_from_py(item.second);
             py::gil_scoped_release release;
             return s.train_step(values);
           })
      .def("forward_backward",
           [](TrainingSession& s, const py::dict& feeds) {
             std::map<std::string, Value> values;
             for (auto item : feeds)
               values[item.first.cast<std::string>()] = value_from_py(item.second);
             py::gil_scoped_release release;
             return s.forward_backward(values);
           })
      .def("optimizer_step", &TrainingSession::optimizer_step,
           py::call_guard<py::gil_scoped_release>())
      .def("lazy_reset_grad", &TrainingSession::lazy_reset_grad,
           py::call_guard<py::gil_scoped_release>())
      .def("end_profiling", &TrainingSession::end_profiling,
           py::call_guard<py::gil_scoped_release>())
      .def("eval_step",
           [](TrainingSession& s, const py::dict& feeds) {
             std::map<std::string, Value> values;
             for (auto item : feeds)
               values[item.first.cast<std::string>()] = value_from_py(item.second);
             std::vector<Value> outs;
             {
               py::gil_scoped_release release;
               outs = s.eval_step(values);
             }
             py::list result;
             for (const auto& v : outs) result.append(value_to_py(v));
             return result;
           })
      .def("state",
           [](const TrainingSession& s) {
             std::map<std::string, Tensor> state;
             {
               py::gil_scoped_release release;
               state = s.state();
             }
             py::dict d;
             for (const auto& [name, t] : state) d[py::str(name)] = value_to_py(Value(t));
             return d;
           })
      .def_property("learning_rate", without_gil(&TrainingSession::learning_rate),
                    without_gil(&TrainingSession::set_learning_rate))
      .def_property_readonly("step", without_gil(&TrainingSession::step))
      .def("parameters", &TrainingSession::parameters)
      .def("running_statistics", &TrainingSession::running_statistics)
      .def_property_readonly("data_parallel", &TrainingSession::data_parallel)
      .def_property_readonly("world_size", &TrainingSession::world_size)
      .def_property_readonly("zero_stage", &TrainingSession::zero_stage)
      .def_property_readonly("loss_scale", without_gil(&TrainingSession::loss_scale))
      .def_property_readonly("skipped_steps", without_gil(&TrainingSession::skipped_steps))
      .def("save_checkpoint", &TrainingSession::save_checkpoint,
           py::call_guard<py::gil_scoped_release>())
      .def("load_checkpoint", &TrainingSession::load_checkpoint,
           py::call_guard<py::gil_scoped_release>())
      .def("export_model_for_inferencing", &TrainingSession::export_model_for_inferencing,
           py::arg("path"), py::arg("outputs"), py::call_guard<py::gil_scoped_release>());
}

}  // namespace graft::python
