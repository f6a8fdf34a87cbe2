// graft._C: the engine's Python binding. One init_<area> per file.
#include <pybind11/pybind11.h>

#include "exec/error.h"

namespace py = pybind11;

namespace graft::python {
void init_session(py::module_& m);
void init_model(py::module_& m);
void init_autodiff(py::module_& m);
void init_optim(py::module_& m);
void init_checkpoint(py::module_& m);
void init_training(py::module_& m);
void init_distributed(py::module_& m);
}  // namespace graft::python

PYBIND11_MODULE(_C, m) {
  m.doc() = "graft engine binding";
  auto invalid =
      py::register_exception<graft::InvalidArgument>(m, "InvalidArgument", PyExc_ValueError);
  py::register_exception<graft::NotImplemented>(m, "NotImplemented", PyExc_RuntimeError);
  py::register_exception<graft::Fail>(m, "Fail", PyExc_RuntimeError);
  (void)invalid;
  graft::python::init_session(m);
  graft::python::init_model(m);
  graft::python::init_autodiff(m);
  graft::python::init_optim(m);
  graft::python::init_checkpoint(m);
  graft::python::init_training(m);
  graft::python::init_distributed(m);
}
