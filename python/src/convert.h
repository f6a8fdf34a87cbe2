// NumPy <-> graft Value conversion. Python passes tensors as (array, onnx element type code):
// the package maps NumPy and ml_dtypes dtypes to codes, so this side only moves bytes.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "exec/value.h"

namespace graft::python {

namespace py = pybind11;

// `obj` is one of: (code, ndarray) for a tensor, ("seq", code, [items]) for a sequence,
// ("map", keys_item, values_item) for a map, ("opt", kind, code, item_or_None) for an optional,
// or None.
Value value_from_py(const py::handle& obj);
// The reverse: tensors come back as (code, ndarray) with raw storage for types NumPy lacks.
py::object value_to_py(const Value& value);

}  // namespace graft::python
