// The CUDA devices graft's CUDA provider runs on. A Device (one per CUDA device, made on first use)
// holds the device's caching allocator, the stream its NCCL collectives run on and the NCCL
// communicator. Each CUDA provider (one per session) runs on Streams of its own, taken from its
// device: a compute stream on which every kernel is enqueued in graph order, a copy stream for the
// copies between host and device memory, and the device memory of the compute stream. Events
// order the streams; the host waits only where it reads a value.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "distributed/communicator.h"
#include "exec/kernel.h"
#include "exec/provider.h"
#include "providers/cuda/caching_allocator.h"

namespace graft::cuda {

// Throws Fail "<what>: <CUDA's error string>" unless `code` is cudaSuccess.
void check(cudaError_t code, const std::string& what);

// The number of CUDA devices this process can use; 0 when there is none or no driver, with
// the reason in `why` when given.
int device_count(std::string* why = nullptr);

// The device a process uses when the provider options name none: under a launcher that starts
// several ranks per node (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID or LOCAL_RANK set), the
// local rank modulo `count`, so the ranks of a node spread over its devices; 0 otherwise.
int default_device_id(int count);

// The CUDA provider's options, onnxruntime's names.
struct CudaOptions {
  int device_id = 0;
  // The most bytes the session's device memory may reserve (gpu_mem_limit); 0: no limit.
  size_t memory_limit = 0;
  // Whether float32 matrix products may use TF32 tensor cores (use_tf32).
  bool use_tf32 = true;
};

// Reads "device_id" (a device in [0, count); default default_device_id(count)), "gpu_mem_limit"
// (bytes) and "use_tf32" ("0" or "1"). Throws InvalidArgument naming the provider, the option and
// the value for an unknown option or a bad value.
CudaOptions parse_options(const ProviderOptions& options, int count);

// Makes `device` the calling thread's current device for the scope.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// An event that orders streams (no timing), made on the current device.
class Event {
 public:
  Event();
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  // Marks the work enqueued on `stream` so far.
  void record(cudaStream_t stream);
  // Makes the work enqueued on `stream` from now on wait for the recorded work.
  void wait_on(cudaStream_t stream) const;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

// The events of MemorySource implementations (caching_allocator.h): one recorded on `stream`, on
// its device; nullptr when none can be made (the runtime is being unloaded at exit), which counts
// as done.
void* record_stream_event(cudaStream_t stream);
bool stream_event_done(void* event);
void destroy_stream_event(void* event);

// Device memory for the work of one stream, from the device's caching allocator; fills and copies
// are enqueued on that stream.
class DeviceMemory final : public StreamAllocator {
 public:
  DeviceMemory(int device, CachingAllocator& cache, cudaStream_t stream);
  MemoryDevice device() const override { return {"cuda", device_}; }
  // Enqueued on the stream.
  void fill(void* ptr, int byte, size_t bytes) override;
  // Enqueued on the stream after its earlier work; return once the bytes are in place.
  void copy_from_host(void* dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  cudaStream_t cuda_stream() const { return static_cast<cudaStream_t>(stream()); }

 private:
  int device_;
};

class Device;

// The streams of one CUDA provider. A provider gives its Streams back when it is destroyed, and a
// later provider on the device takes them with their cached memory: a tensor that outlives its
// session is still released into the pool of a live stream.
class Streams {
 public:
  Streams(Device& device, cudaStream_t compute, cudaStream_t copy);
  ~Streams();
  Streams(const Streams&) = delete;
  Streams& operator=(const Streams&) = delete;

  Device& device() const { return device_; }
  cudaStream_t compute() const { return compute_; }
  cudaStream_t copy() const { return copy_; }
  // Device memory ordered on the compute stream: where the provider's kernels put their outputs.
  DeviceMemory& memory() const { return *memory_; }
  // Makes the work enqueued on `waiter` from now on wait for the work enqueued on `signaler` so
  // far (any two streams of the device).
  void order(cudaStream_t signaler, cudaStream_t waiter);
  // Waits for the work of both streams.
  void synchronize() const;

 private:
  Device& device_;
  cudaStream_t compute_;
  cudaStream_t copy_;
  std::unique_ptr<DeviceMemory> memory_;
  std::mutex mutex_;  // order() records and waits on one event
  Event marker_;
};

// Implemented by the CUDA provider: the streams its kernels run on.
class StreamProvider {
 public:
  virtual ~StreamProvider() = default;
  virtual Streams& streams() const = 0;
};

// The streams of the provider that builds the kernel `info` describes; fails naming the node when
// that is not a CUDA provider.
Streams& streams_of(const KernelInfo& info);

class Device {
 public:
  // CUDA device `id`, made on first use and never destroyed (device tensors held by static objects
  // may be released after main returns). Throws Fail naming the reason when it cannot be used.
  static Device& get(int id);
  int id() const { return id_; }
  // Makes this the calling thread's current device (where the runtime enqueues and allocates):
  // the copy and collective kernels call it, so the thread that runs a session works on its
  // device.
  void make_current() const;
  // The device's memory: segments cached per stream.
  CachingAllocator& memory() { return *memory_; }
  // Streams for a new provider, whose compute stream may reserve at most `limit` bytes (0: no
  // limit): ones a provider gave back, else new ones.
  Streams& acquire_streams(size_t limit);
  // Takes back streams from acquire_streams once their work is done.
  void release_streams(Streams& streams);
  // The stream NCCL runs its collectives on.
  cudaStream_t collective_stream() const { return collective_stream_; }
  // The NCCL communicator over the ranks of distributed::world(), on this device, made on first
  // use. Its collectives run on collective_stream().
  distributed::Communicator& communicator();

 private:
  explicit Device(int id);
  int id_;
  std::unique_ptr<MemorySource> source_;
  std::unique_ptr<CachingAllocator> memory_;
  cudaStream_t collective_stream_ = nullptr;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Streams>> streams_;  // every Streams made, in use or not
  std::vector<Streams*> idle_;
  std::unique_ptr<distributed::Communicator> communicator_;
};

}  // namespace graft::cuda
