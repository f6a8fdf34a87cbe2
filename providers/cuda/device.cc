#include "providers/cuda/device.h"

#include <cstdlib>

#include "distributed/backends.h"
#include "exec/error.h"

namespace graft::cuda {
namespace {

constexpr const char* kProvider = "CUDAExecutionProvider";

// cudaMalloc'd device memory and the device's events, for the caching allocator.
class DeviceSource final : public MemorySource {
 public:
  explicit DeviceSource(int device) : device_(device) {}
  void* allocate(size_t bytes) override {
    const DeviceGuard guard(device_);
    void* ptr = nullptr;
    const cudaError_t code = cudaMalloc(&ptr, bytes);
    if (code == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky: clear it, so later calls do not report it
      return nullptr;
    }
    check(code,
          "cudaMalloc of " + std::to_string(bytes) + " bytes on device " + std::to_string(device_));
    return ptr;
  }
  void release(void* ptr, size_t) override {
    const DeviceGuard guard(device_);
    // At exit the runtime may be gone before the last tensors; there is nothing left to free then.
    if (cudaFree(ptr) != cudaSuccess) cudaGetLastError();
  }
  void synchronize() override {
    const DeviceGuard guard(device_);
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }
  void* record_event(void* stream) override {
    return record_stream_event(static_cast<cudaStream_t>(stream));
  }
  bool event_done(void* event) override { return stream_event_done(event); }
  void destroy_event(void* event) override { destroy_stream_event(event); }

 private:
  int device_;
};

// The first of the launchers' local-rank variables that is set; -1 when none is.
int local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "LOCAL_RANK"}) {
    const char* text = std::getenv(name);
    if (text == nullptr || *text == '\0') continue;
    char* end = nullptr;
    const long rank = std::strtol(text, &end, 10);
    if (*end == '\0' && rank >= 0) return static_cast<int>(rank);
  }
  return -1;
}

// A whole non-negative decimal number, or -1.
long long parse_count(const std::string& text) {
  if (text.empty() || text.size() > 18) return -1;
  long long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    value = value * 10 + (c - '0');
  }
  return value;
}

cudaStream_t new_stream(const char* what) {
  cudaStream_t stream = nullptr;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), what);
  return stream;
}

}  // namespace

void check(cudaError_t code, const std::string& what) {
  if (code != cudaSuccess) throw Fail(what + ": " + cudaGetErrorString(code));
}

int device_count(std::string* why) {
  int count = 0;
  const cudaError_t code = cudaGetDeviceCount(&count);
  if (code != cudaSuccess) {
    // Clears the error, which is not sticky, so a later call may try again.
    cudaGetLastError();
    if (why) *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(code);
    return 0;
  }
  if (count == 0 && why) *why = "no CUDA device is present";
  return count;
}

int default_device_id(int count) {
  const int rank = local_rank();
  return rank < 0 || count <= 0 ? 0 : rank % count;
}

CudaOptions parse_options(const ProviderOptions& options, int count) {
  check_provider_options(kProvider, options, {"device_id", "gpu_mem_limit", "use_tf32"});
  auto bad = [](const std::string& key, const std::string& value, const std::string& expected) {
    throw InvalidArgument(std::string(kProvider) + ": provider option " + key + "='" + value +
                          "' is not " + expected);
  };
  CudaOptions parsed;
  parsed.device_id = default_device_id(count);
  if (auto it = options.find("device_id"); it != options.end()) {
    const long long id = parse_count(it->second);
    if (id < 0 || id >= count) {
      bad("device_id", it->second,
          "a CUDA device of this process (" + std::to_string(count) + " device" +
              (count == 1 ? "" : "s") + (count > 0 ? ": 0.." + std::to_string(count - 1) : "") +
              "; CUDA_VISIBLE_DEVICES chooses which)");
    }
    parsed.device_id = static_cast<int>(id);
  }
  if (auto it = options.find("gpu_mem_limit"); it != options.end()) {
    const long long limit = parse_count(it->second);
    if (limit <= 0) bad("gpu_mem_limit", it->second, "a positive number of bytes");
    parsed.memory_limit = static_cast<size_t>(limit);
  }
  if (auto it = options.find("use_tf32"); it != options.end()) {
    if (it->second != "0" && it->second != "1") bad("use_tf32", it->second, "0 or 1");
    parsed.use_tf32 = it->second == "1";
  }
  return parsed;
}

DeviceGuard::DeviceGuard(int device) {
  int current = 0;
  check(cudaGetDevice(&current), "cudaGetDevice");
  if (current == device) return;
  check(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
  previous_ = current;
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

Event::Event() {
  check(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), "cudaEventCreate");
}

Event::~Event() { cudaEventDestroy(event_); }

void Event::record(cudaStream_t stream) {
  check(cudaEventRecord(event_, stream), "cudaEventRecord");
}

void Event::wait_on(cudaStream_t stream) const {
  check(cudaStreamWaitEvent(stream, event_, 0), "cudaStreamWaitEvent");
}

void* record_stream_event(cudaStream_t stream) {
  int device = 0;
  if (cudaStreamGetDevice(stream, &device) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  const DeviceGuard guard(device);
  cudaEvent_t event = nullptr;
  if (cudaEventCreateWithFlags(&event, cudaEventDisableTiming) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  if (cudaEventRecord(event, stream) != cudaSuccess) {
    cudaGetLastError();
    cudaEventDestroy(event);
    return nullptr;
  }
  return event;
}

bool stream_event_done(void* event) {
  if (event == nullptr) return true;
  const cudaError_t code = cudaEventQuery(static_cast<cudaEvent_t>(event));
  if (code == cudaErrorNotReady) return false;
  // Any other error is sticky (the context is lost) and surfaces at the next call that checks.
  if (code != cudaSuccess) cudaGetLastError();
  return true;
}

void destroy_stream_event(void* event) {
  if (event != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

DeviceMemory::DeviceMemory(int device, CachingAllocator& cache, cudaStream_t stream)
    : StreamAllocator(cache, stream, "Cuda", /*on_host=*/false), device_(device) {}

void DeviceMemory::fill(void* ptr, int byte, size_t bytes) {
  const DeviceGuard guard(device_);
  check(cudaMemsetAsync(ptr, byte, bytes, cuda_stream()), "cudaMemsetAsync");
}

void DeviceMemory::copy_from_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  const DeviceGuard guard(device_);
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cuda_stream()),
        "copying to device " + std::to_string(device_));
  check(cudaStreamSynchronize(cuda_stream()), "copying to device " + std::to_string(device_));
}

void DeviceMemory::copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  const DeviceGuard guard(device_);
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cuda_stream()),
        "copying from device " + std::to_string(device_));
  check(cudaStreamSynchronize(cuda_stream()), "copying from device " + std::to_string(device_));
}

Streams::Streams(Device& device, cudaStream_t compute, cudaStream_t copy)
    : device_(device),
      compute_(compute),
      copy_(copy),
      memory_(std::make_unique<DeviceMemory>(device.id(), device.memory(), compute)) {}

Streams::~Streams() {
  cudaStreamDestroy(compute_);
  cudaStreamDestroy(copy_);
}

void Streams::order(cudaStream_t signaler, cudaStream_t waiter) {
  std::lock_guard lock(mutex_);
  marker_.record(signaler);
  marker_.wait_on(waiter);
}

void Streams::synchronize() const {
  check(cudaStreamSynchronize(compute_), "synchronizing the compute stream");
  check(cudaStreamSynchronize(copy_), "synchronizing the copy stream");
}

Streams& streams_of(const KernelInfo& info) {
  const auto* provider = dynamic_cast<const StreamProvider*>(info.provider());
  if (provider == nullptr) info.fail("a CUDA kernel can only be built by the CUDA provider");
  return provider->streams();
}

Device::Device(int id) : id_(id) {
  const DeviceGuard guard(id_);
  source_ = std::make_unique<DeviceSource>(id_);
  memory_ = std::make_unique<CachingAllocator>(*source_, "CUDA:" + std::to_string(id_));
  collective_stream_ = new_stream("creating the collective stream");
}

Device& Device::get(int id) {
  static std::mutex mutex;
  // Never destroyed: device tensors held by static objects may be released after main returns.
  static std::vector<Device*> devices;
  std::lock_guard lock(mutex);
  std::string why;
  const int count = device_count(&why);
  if (count == 0) throw Fail(std::string(kProvider) + ": no usable CUDA device (" + why + ")");
  if (id < 0 || id >= count) {
    throw Fail(std::string(kProvider) + ": CUDA device " + std::to_string(id) +
               " does not exist (this process sees " + std::to_string(count) + ")");
  }
  if (devices.size() < static_cast<size_t>(count)) devices.resize(static_cast<size_t>(count));
  if (devices[static_cast<size_t>(id)] == nullptr)
    devices[static_cast<size_t>(id)] = new Device(id);
  return *devices[static_cast<size_t>(id)];
}

void Device::make_current() const {
  int current = 0;
  check(cudaGetDevice(&current), "cudaGetDevice");
  if (current != id_) check(cudaSetDevice(id_), "cudaSetDevice(" + std::to_string(id_) + ")");
}

Streams& Device::acquire_streams(size_t limit) {
  std::lock_guard lock(mutex_);
  Streams* streams = nullptr;
  if (!idle_.empty()) {
    streams = idle_.back();
    idle_.pop_back();
  } else {
    const DeviceGuard guard(id_);
    cudaStream_t compute = new_stream("creating a compute stream");
    cudaStream_t copy = nullptr;
    try {
      copy = new_stream("creating a copy stream");
    } catch (...) {
      cudaStreamDestroy(compute);
      throw;
    }
    streams_.push_back(std::make_unique<Streams>(*this, compute, copy));
    streams = streams_.back().get();
  }
  memory_->set_limit(streams->compute(), limit);
  return *streams;
}

void Device::release_streams(Streams& streams) {
  // A later provider starts with nothing of this one's still running.
  try {
    streams.synchronize();
  } catch (const Fail&) {
    // The context is lost; the streams are unusable, so they are not handed out again.
    return;
  }
  std::lock_guard lock(mutex_);
  idle_.push_back(&streams);
}

distributed::Communicator& Device::communicator() {
  std::lock_guard lock(mutex_);
  if (!communicator_) {
    communicator_ =
        distributed::make_nccl_communicator(distributed::world(), id_, collective_stream_);
  }
  return *communicator_;
}

}  // namespace graft::cuda
