// graft._C.OrtValue: one value (a tensor in host or device memory, or a sequence, map or
// optional) held by Python, as onnxruntime's OrtValue; and the session run over such values.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl_bind.h>

#include <map>
#include <string>
#include <vector>

#include "exec/error.h"
#include "exec/session.h"
#include "python/src/run_options.h"

namespace graft::python {

struct OrtValue {
  Value value;

  // Throws InvalidArgument when the value is not a tensor.
  const Tensor& tensor() const {
    if (!value.is_tensor()) throw InvalidArgument("the OrtValue does not hold a tensor");
    return value.tensor();
  }
};

// Runs `session` on `feeds` with `options` (graft.RunOptions or None); `output_names` empty
// means every output. Outputs made on a device stay there when `outputs_on_device`. Throws as
// InferenceSession::run does (Fail once the options' terminate flag is set).
std::vector<OrtValue> run_with_values(InferenceSession& session,
                                      const std::vector<std::string>& output_names,
                                      const std::map<std::string, OrtValue>& feeds,
                                      bool outputs_on_device, const py::object& run_options);

}  // namespace graft::python

// Lists of OrtValues cross to Python as graft._C.OrtValueVector (onnxruntime's name), not lists.
PYBIND11_MAKE_OPAQUE(std::vector<graft::python::OrtValue>)
