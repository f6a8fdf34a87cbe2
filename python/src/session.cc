// Binding of InferenceSession and SessionOptions.
#include <pybind11/stl.h>

#include "exec/provider.h"
#include "exec/session.h"
#include "ir/model.h"
#include "python/src/convert.h"
#include "python/src/ortvalue.h"

namespace graft::python {

namespace {

py::dict io_dict(const IOInfo& info) {
  py::dict d;
  d["name"] = info.name;
  d["type"] = info.type;
  d["dtype"] = static_cast<int>(info.dtype);
  if (info.has_shape) {
    py::list shape;
    for (size_t i = 0; i < info.dims.size(); ++i) {
      if (info.dims[i] >= 0) {
        shape.append(info.dims[i]);
      } else if (!info.dim_params[i].empty()) {
        shape.append(info.dim_params[i]);
      } else {
        shape.append(py::none());
      }
    }
    d["shape"] = shape;
  } else {
    d["shape"] = py::none();
  }
  return d;
}

py::list io_list(const std::vector<IOInfo>& infos) {
  py::list out;
  for (const auto& i : infos) out.append(io_dict(i));
  return out;
}

}  // namespace

void init_session(py::module_& m) {
  py::class_<SessionOptions>(m, "SessionOptions")
      .def(py::init<>())
      .def_readwrite("intra_op_num_threads", &SessionOptions::intra_op_num_threads)
      .def_readwrite("inter_op_num_threads", &SessionOptions::inter_op_num_threads)
      .def_property(
          "execution_mode",
          [](const SessionOptions& o) { return static_cast<int>(o.execution_mode); },
          [](SessionOptions& o, int mode) {
            if (mode != 0 && mode != 1)
              throw InvalidArgument(
                  "execution_mode must be 0 (ORT_SEQUENTIAL) or 1 (ORT_PARALLEL), got " +
                  std::to_string(mode));
            o.execution_mode = static_cast<ExecutionMode>(mode);
          })
      .def_readwrite("graph_optimization_level", &SessionOptions::graph_optimization_level)
      .def_readwrite("optimized_model_filepath", &SessionOptions::optimized_model_filepath)
      .def_readwrite("enable_profiling", &SessionOptions::enable_profiling)
      .def_readwrite("profile_file_prefix", &SessionOptions::profile_file_prefix)
      .def_readwrite("enable_mem_pattern", &SessionOptions::enable_mem_pattern)
      .def_readwrite("memory_limit_bytes", &SessionOptions::memory_limit_bytes)
      .def_readwrite("provider_options", &SessionOptions::provider_options);

  py::class_<TerminateFlag>(m, "TerminateFlag")
      .def(py::init<>())
      .def_property(
          "value", [](const TerminateFlag& f) { return f.value.load(); },
          [](TerminateFlag& f, bool v) { f.value.store(v); });

  py::class_<InferenceSession>(m, "InferenceSession")
      .def_static(
          "from_file",
          [](const std::string& path, const SessionOptions& options,
             std::vector<std::string> providers) {
            py::gil_scoped_release release;
            return std::make_unique<InferenceSession>(
                InferenceSession::from_file(path, options, std::move(providers)));
          },
          py::arg("path"), py::arg("options"), py::arg("providers"))
      .def_static(
          "from_bytes",
          [](const py::bytes& data, const SessionOptions& options,
             std::vector<std::string> providers, const std::string& base_dir) {
            std::string bytes = data;
            py::gil_scoped_release release;
            return std::make_unique<InferenceSession>(
                InferenceSession::from_bytes(bytes, options, std::move(providers), base_dir));
          },
          py::arg("data"), py::arg("options"), py::arg("providers"), py::arg("base_dir") = "")
      .def(
          "run",
          [](InferenceSession& s, const std::vector<std::string>& output_names,
             const py::dict& feeds, const py::object& run_options) {
            std::map<std::string, Value> values;
            for (auto item : feeds)
              values[item.first.cast<std::string>()] = value_from_py(item.second);
            const RunOptions options = run_options_from_py(run_options);
            std::vector<Value> outs;
            {
              py::gil_scoped_release release;
              outs = s.run(output_names, values, options);
            }
            py::list result;
            for (const auto& v : outs) result.append(value_to_py(v));
            return result;
          },
          py::arg("output_names"), py::arg("feeds"), py::arg("run_options") = py::none())
      .def(
          "run_with_ort_values",
          [](InferenceSession& s, const std::map<std::string, OrtValue>& feeds,
             const std::vector<std::string>& output_names, const py::object& run_options) {
            return run_with_values(s, output_names, feeds, false, run_options);
          },
          py::arg("feeds"), py::arg("output_names"), py::arg("run_options") = py::none())
      .def(
          "run_with_iobinding",
          [](const py::object&, const py::object& binding, const py::object& run_options) {
            binding.attr("_run")(run_options);
          },
          py::arg("iobinding"), py::arg("run_options") = py::none())
      .def("inputs", [](const InferenceSession& s) { return io_list(s.inputs()); })
      .def("outputs", [](const InferenceSession& s) { return io_list(s.outputs()); })
      .def("overridable_initializers",
           [](const InferenceSession& s) { return io_list(s.overridable_initializers()); })
      .def("providers", &InferenceSession::providers)
      .def("profiling_start_time_ns", &InferenceSession::profiling_start_time_ns)
      .def("node_assignments",
           [](const InferenceSession& s) {
             py::list out;
             for (const auto& a : s.node_assignments())
               out.append(py::make_tuple(a.provider, a.node_name, a.op_type, a.domain));
             return out;
           })
      .def("metadata",
           [](const InferenceSession& s) {
             const ir::Model& m = s.model();
             py::dict d;
             d["producer_name"] = m.producer_name;
             d["graph_name"] = m.graph.name;
             d["graph_description"] = m.graph.doc_string;
             d["domain"] = m.domain;
             d["description"] = m.doc_string;
             d["version"] = m.model_version;
             d["custom_metadata_map"] = m.metadata;
             return d;
           })
      .def("planned_peak_bytes", &InferenceSession::planned_peak_bytes)
      .def("end_profiling", &InferenceSession::end_profiling);

  m.def("available_providers", &available_providers);
}

}  // namespace graft::python
