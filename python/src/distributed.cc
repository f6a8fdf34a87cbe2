// Binding of the process's communicator (distributed::world()) on NumPy arrays. The package
// (graft/distributed.py) passes C-contiguous arrays with their ONNX element type code; collectives
// release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdio>

#include "distributed/backends.h"
#include "distributed/communicator.h"
#include "distributed/data_parallel.h"
#include "exec/error.h"
#include "ir/serialize.h"

namespace graft::python {

namespace py = pybind11;

namespace {

using distributed::Communicator;
using distributed::world;

// The array's element count, after checking that it is writable (when `writable`) C-contiguous
// memory, as the package guarantees.
int64_t element_count(const py::array& array, bool writable) {
  if (!(array.flags() & py::array::c_style))
    throw InvalidArgument("graft.distributed: array is not C-contiguous");
  if (writable && !array.writeable())
    throw InvalidArgument("graft.distributed: array is read-only");
  return static_cast<int64_t>(array.size());
}

}  // namespace

void init_distributed(py::module_& m) {
  py::module_ d = m.def_submodule("distributed", "the process's communicator");
  d.def("init", [] { return world().backend(); });
  d.def("rank", [] { return world().rank(); });
  d.def("size", [] { return world().size(); });
  d.def("backend", [] { return world().backend(); });
  d.def("launched_world_size", &distributed::launched_world_size);
  d.def("built_with_mpi", &distributed::built_with_mpi);
  d.def("built_with_nccl", &distributed::built_with_nccl);
  d.def(
      "add_gradient_all_reduce",
      [](const py::bytes& model, const std::vector<std::string>& params, double bucket_mb) {
        if (!(bucket_mb > 0))
          throw InvalidArgument("bucket_mb must be > 0, got " + std::to_string(bucket_mb));
        ir::Model m = ir::load_model_from_bytes(std::string(model));
        distributed::DataParallelOptions options;
        options.bucket_bytes = std::max<size_t>(1, static_cast<size_t>(bucket_mb * 1024 * 1024));
        distributed::add_gradient_all_reduce(m, params, options);
        return py::bytes(ir::serialize_model(m));
      },
      py::arg("model"), py::arg("params"), py::arg("bucket_mb") = 25.0,
      "The model with its gradients \"<p>_grad\" averaged across ranks by bucketed "
      "com.graft.AllReduce nodes (distributed/data_parallel.h).");
  d.def(
      "set_step", [](int64_t step) { world().set_step(step); }, py::arg("step"));
  d.def("step", [] { return world().step(); });
  d.def(
      "set_timeout", [](double seconds) { world().set_timeout(seconds); }, py::arg("seconds"));
  d.def("timeout", [] { return world().timeout(); });
  d.def(
      "abort",
      [](int code) {
        std::fflush(stdout);
        std::fflush(stderr);
        world().abort(code);
      },
      py::arg("code"));
  d.def("barrier", [] {
    Communicator& comm = world();
    py::gil_scoped_release release;
    comm.barrier();
  });
  d.def(
      "all_reduce",
      [](py::array array, int code, const std::string& op, const std::string& label) {
        Communicator& comm = world();
        const auto reduce = distributed::parse_reduce_op(op, "graft.distributed.all_reduce");
        const int64_t count = element_count(array, true);
        void* data = array.mutable_data();
        py::gil_scoped_release release;
        const distributed::CollectiveLabel scope(label);
        comm.all_reduce(data, count, static_cast<DType>(code), reduce);
      },
      py::arg("array"), py::arg("code"), py::arg("op"), py::arg("label"));
  d.def(
      "broadcast",
      [](py::array array, int code, int root, const std::string& label) {
        Communicator& comm = world();
        const int64_t count = element_count(array, true);
        void* data = array.mutable_data();
        py::gil_scoped_release release;
        const distributed::CollectiveLabel scope(label);
        comm.broadcast(data, count, static_cast<DType>(code), root);
      },
      py::arg("array"), py::arg("code"), py::arg("root"), py::arg("label"));
  d.def(
      "all_gather",
      [](const py::array& send, py::array recv, int code, const std::string& label) {
        Communicator& comm = world();
        const int64_t count = element_count(send, false);
        if (element_count(recv, true) != count * comm.size())
          throw InvalidArgument("graft.distributed.all_gather: receive array has the wrong size");
        const void* in = send.data();
        void* out = recv.mutable_data();
        py::gil_scoped_release release;
        const distributed::CollectiveLabel scope(label);
        comm.all_gather(in, out, count, static_cast<DType>(code));
      },
      py::arg("send"), py::arg("recv"), py::arg("code"), py::arg("label"));
  d.def(
      "reduce_scatter",
      [](const py::array& send, py::array recv, int code, const std::string& op,
         const std::string& label) {
        Communicator& comm = world();
        const auto reduce = distributed::parse_reduce_op(op, "graft.distributed.reduce_scatter");
        const int64_t count = element_count(recv, true);
        if (element_count(send, false) != count * comm.size())
          throw InvalidArgument("graft.distributed.reduce_scatter: send array has the wrong size");
        const void* in = send.data();
        void* out = recv.mutable_data();
        py::gil_scoped_release release;
        const distributed::CollectiveLabel scope(label);
        comm.reduce_scatter(in, out, count, static_cast<DType>(code), reduce);
      },
      py::arg("send"), py::arg("recv"), py::arg("code"), py::arg("op"), py::arg("label"));
}

}  // namespace graft::python
