// graft._C: the engine's Python binding. One init_<area> per file.
#include <pybind11/pybind11.h>

#include "exec/error.h"
#include "ir/names.h"

namespace py = pybind11;

namespace graft::python {
void init_session(py::module_& m);
void init_model(py::module_& m);
void init_autodiff(py::module_& m);
void init_optim(py::module_& m);
void init_checkpoint(py::module_& m);
void init_training(py::module_& m);
void init_training_api(py::module_& m);
void init_distributed(py::module_& m);
void init_iobinding(py::module_& m);
}  // namespace graft::python

PYBIND11_MODULE(_C, m) {
  m.doc() = "graft engine binding";
  auto invalid =
      py::register_exception<graft::InvalidArgument>(m, "InvalidArgument", PyExc_ValueError);
  py::register_exception<graft::NotImplemented>(m, "NotImplemented", PyExc_RuntimeError);
  py::register_exception<graft::Fail>(m, "Fail", PyExc_RuntimeError);
  (void)invalid;
  // The names that tie graphs together (ir/names.h), for the Python side of the same protocol.
  auto names = m.def_submodule("names", "Names that tie graft's graphs together (ir/names.h)");
  names.attr("DOMAIN") = graft::names::kDomain;
  names.attr("GRAD_SUFFIX") = graft::names::kGradSuffix;
  names.attr("NEW_SUFFIX") = graft::names::kNewSuffix;
  names.attr("GRADIENT_PREFIX") = graft::names::kGradientPrefix;
  names.attr("LEARNING_RATE") = graft::names::kLearningRate;
  names.attr("STEP") = graft::names::kStep;
  names.attr("RNG_PROPERTY") = graft::names::kRngProperty;
  names.attr("OPTIMIZER_STATE_PROPERTY") = graft::names::kOptimizerStateProperty;
  names.attr("WORLD_SIZE_PROPERTY") = graft::names::kWorldSizeProperty;
  graft::python::init_session(m);
  graft::python::init_model(m);
  graft::python::init_autodiff(m);
  graft::python::init_optim(m);
  graft::python::init_checkpoint(m);
  graft::python::init_training(m);
  graft::python::init_training_api(m);
  graft::python::init_distributed(m);
  graft::python::init_iobinding(m);
}
