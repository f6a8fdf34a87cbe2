// graft.RunOptions as the engine reads it: the flag behind RunOptions.terminate, which Python sets
// from any thread and a run in progress reads before each node, and the options of one run.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>

#include "exec/session.h"

namespace graft::python {

namespace py = pybind11;

struct TerminateFlag {
  std::atomic<bool> value{false};
};

// The engine's RunOptions for a graft.RunOptions (None: the defaults). The result points at the
// object's terminate flag: the caller keeps `run_options` alive for the run.
inline RunOptions run_options_from_py(const py::object& run_options) {
  RunOptions options;
  if (run_options.is_none()) return options;
  options.terminate = &run_options.attr("_flag").cast<TerminateFlag&>().value;
  options.only_execute_path_to_fetches =
      run_options.attr("only_execute_path_to_fetches").cast<bool>();
  return options;
}

}  // namespace graft::python
