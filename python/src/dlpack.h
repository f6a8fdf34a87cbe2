// DLPack: graft tensors lent to other libraries (torch.from_dlpack, numpy.from_dlpack) and theirs
// wrapped as graft tensors, both without copying the elements.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <utility>

#include "exec/tensor.h"

namespace graft::python {

namespace py = pybind11;

// DLPack's (device type, device id) of where `tensor` is: (1, 0) for host memory, (2, id) for
// CUDA device id's. Throws py::buffer_error for memory DLPack has no device type for.
std::pair<int, int> dlpack_device(const Tensor& tensor);

// A capsule over `tensor`'s elements ("dltensor_versioned" when `versioned`, else the v0.8
// "dltensor") that holds its buffer until the consumer's call of the deleter. For a tensor in
// device memory the consumer's `stream` (DLPack's argument: nullopt the legacy default stream, -1
// no ordering) first waits for the work that writes it. Throws py::buffer_error for an element
// type DLPack cannot describe (strings, 4-bit and 2-bit integers).
py::capsule to_dlpack(const Tensor& tensor, std::optional<int64_t> stream, bool versioned);

// The tensor described by a capsule from another library's __dlpack__, over the same memory: host
// memory (CPU, CUDA pinned) as it is, CUDA device memory through device_exchange("cuda"). The
// capsule is marked used, and the producer's deleter runs once the last graft tensor sharing it is
// gone. Throws py::buffer_error for a used capsule, a device, element type or layout graft cannot
// take (strides other than row-major: call .contiguous() first), a DLPack major version above 1.
Tensor from_dlpack(const py::capsule& capsule);

// Whether an unused capsule holds 8-bit unsigned integers (onnxruntime's is_dlpack_uint8_tensor:
// producers that lack a boolean type send booleans so). Throws py::buffer_error for anything that
// is not an unused DLPack capsule.
bool dlpack_is_uint8(const py::capsule& capsule);

}  // namespace graft::python
