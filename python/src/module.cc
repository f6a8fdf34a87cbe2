// graft._C: the engine's Python binding. One init_<area> per file.
#include <pybind11/pybind11.h>

#include <exception>
#include <string_view>

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

namespace {

// Raises `type` with the text of `e`. Messages quote names and strings from models, which need
// not be UTF-8: bytes that are not become \xNN escapes, so the error stays the one graft raised
// (pybind11's own translation would raise UnicodeDecodeError instead).
void raise(PyObject* type, const std::exception& e) {
  const std::string_view text = e.what();
  PyObject* message =
      PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "backslashreplace");
  if (message == nullptr) return;  // the decoding error is the one raised
  PyErr_SetObject(type, message);
  Py_DECREF(message);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "graft engine binding";
  // Leaked on purpose: the translator below outlives any module teardown order.
  static auto* invalid =
      new py::exception<graft::InvalidArgument>(m, "InvalidArgument", PyExc_ValueError);
  static auto* not_implemented =
      new py::exception<graft::NotImplemented>(m, "NotImplemented", PyExc_RuntimeError);
  static auto* fail = new py::exception<graft::Fail>(m, "Fail", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const graft::InvalidArgument& e) {
      raise(invalid->ptr(), e);
    } catch (const graft::NotImplemented& e) {
      raise(not_implemented->ptr(), e);
    } catch (const graft::Fail& e) {
      raise(fail->ptr(), e);
    } catch (const std::exception& e) {
      // Text that is UTF-8 goes to pybind11's translation (bad_alloc is MemoryError, ...).
      const std::string_view text = e.what();
      PyObject* decoded =
          PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "strict");
      if (decoded != nullptr) {
        Py_DECREF(decoded);
        throw;
      }
      PyErr_Clear();
      raise(PyExc_RuntimeError, e);
    }
  });
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
