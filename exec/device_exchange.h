// Device tensors shared with code outside graft's sessions: another library's device memory
// wrapped without a copy (DLPack), host data copied onto a device, a session's device output handed
// to another library's stream. Each device provider built into graft registers one DeviceExchange
// for its device type; the Python binding reaches devices through it without knowing their runtime.
#pragma once

#include "ir/api.h"

#include <cstdint>
#include <memory>
#include <string>

#include "exec/allocator.h"
#include "exec/tensor.h"

namespace graft {

// Streams are the device runtime's handles as integers, as DLPack passes them (for CUDA a
// cudaStream_t, with 1 the legacy default stream and 2 the per-thread default stream).
class DeviceExchange {
 public:
  virtual ~DeviceExchange() = default;
  // The memory of device `id` for tensors made outside a session (copied in from the host, made
  // empty for a binding to fill); its work is ordered on stream(id). A session's provider on the
  // same device takes these tensors as feeds without a copy. Throws Fail when the device does not
  // exist or cannot be used.
  virtual Allocator& memory(int id) = 0;
  // A tensor over device `id`'s memory at `data`, which another library owns and `keep_alive`
  // holds (never released through graft). The other library makes the bytes ready on stream(id)
  // first. Throws as memory() does.
  virtual Tensor wrap(void* data, DType dtype, const Shape& shape, int id,
                      std::shared_ptr<void> keep_alive) = 0;
  // The stream tensors of memory(id) and wrap() are ordered on.
  virtual int64_t stream(int id) = 0;
  // Makes the work enqueued on `consumer` from now on wait for the work enqueued so far on the
  // stream of `tensor`'s memory (this device type's), and keeps memory graft allocated from reuse
  // until the work `consumer` holds when graft releases it has run.
  virtual void hand_over(const Tensor& tensor, int64_t consumer) = 0;
  // Copies `src` (in host memory or this device type's) into this device type's memory at `dst`
  // (src.nbytes() bytes) after the work that writes `src`; returns once the bytes are in place.
  virtual void copy_to(void* dst, const Tensor& src) = 0;
  // Returns once the work enqueued so far on the stream of `tensor`'s memory has run.
  virtual void synchronize(const Tensor& tensor) = 0;
};

// Called by a device provider at static-init time; `exchange` lives as long as the process.
GRAFT_API void register_device_exchange(const std::string& type, DeviceExchange& exchange);
// The exchange of device type `type` ("cuda"). Throws NotImplemented naming the build option for
// "cuda" when graft was built without CUDA, InvalidArgument naming the known types otherwise.
GRAFT_API DeviceExchange& device_exchange(const std::string& type);

}  // namespace graft
