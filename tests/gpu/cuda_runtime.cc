// The CUDA provider's runtime (providers/cuda/device.h, caching_allocator.h, pinned.h). First, on
// any machine: the provider options and the device a rank takes under a launcher. Then, on a CUDA
// device: no cudaMalloc once a session runs in a steady state, values through the copy stream and
// pinned memory and back for several dtypes and sizes, streams of their own per session (handed
// on to a later session), device_id and gpu_mem_limit. Exits 1 when a check fails, else 77
// (skipped) with the reason printed when no CUDA device is present, else 0.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "exec/error.h"
#include "exec/provider.h"
#include "exec/session.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "providers/cuda/device.h"
#include "providers/cuda/pinned.h"

namespace graft::cuda {
namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  std::printf("  %-86s %s\n", what.c_str(), ok ? "ok" : "FAILED");
  if (!ok) ++failures;
}

// The message of what `f` throws as InvalidArgument; nullopt when it throws nothing.
template <class F>
std::optional<std::string> invalid_argument(F f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

bool contains(const std::optional<std::string>& text, const std::string& part) {
  return text && text->find(part) != std::string::npos;
}

void check_options() {
  std::printf("provider options:\n");
  const CudaOptions defaults = parse_options({}, 2);
  expect(defaults.device_id == 0 && defaults.memory_limit == 0 && defaults.use_tf32,
         "defaults: device 0, no memory limit, TF32 allowed");
  const CudaOptions given =
      parse_options({{"device_id", "1"}, {"gpu_mem_limit", "1048576"}, {"use_tf32", "0"}}, 2);
  expect(given.device_id == 1 && given.memory_limit == 1048576 && !given.use_tf32,
         "device_id=1 gpu_mem_limit=1048576 use_tf32=0 are read");
  const auto too_high = invalid_argument([] { parse_options({{"device_id", "2"}}, 2); });
  expect(contains(too_high, "device_id='2'") && contains(too_high, "2 devices: 0..1"),
         "device_id 2 of 2 devices is refused, naming the range: " + too_high.value_or("none"));
  for (const char* bad : {"-1", "x", "", "1.5"}) {
    expect(contains(invalid_argument([&] {
                      parse_options({{"device_id", bad}}, 2);
                    }),
                    "device_id"),
           std::string("device_id='") + bad + "' is refused");
  }
  expect(contains(invalid_argument([] {
                    parse_options({{"device_id", "0"}}, 0);
                  }),
                  "0 devices"),
         "any device_id is refused without devices");
  expect(contains(invalid_argument([] {
                    parse_options({{"gpu_mem_limit", "0"}}, 1);
                  }),
                  "gpu_mem_limit"),
         "gpu_mem_limit=0 is refused");
  expect(contains(invalid_argument([] {
                    parse_options({{"use_tf32", "yes"}}, 1);
                  }),
                  "use_tf32"),
         "use_tf32=yes is refused");
  const auto unknown = invalid_argument([] { parse_options({{"devcie_id", "0"}}, 1); });
  expect(contains(unknown, "unknown provider option 'devcie_id'") && contains(unknown, "device_id"),
         "an unknown option is refused, listing the known ones");
}

void check_local_rank() {
  std::printf("device of a rank under a launcher:\n");
  const char* names[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "LOCAL_RANK"};
  std::map<std::string, std::string> saved;
  for (const char* name : names) {
    if (const char* value = std::getenv(name)) saved[name] = value;
    unsetenv(name);
  }
  expect(default_device_id(4) == 0, "no launcher: device 0");
  setenv("LOCAL_RANK", "2", 1);
  expect(default_device_id(4) == 2, "LOCAL_RANK=2 of 4 devices: device 2");
  setenv("MPI_LOCALRANKID", "5", 1);
  expect(default_device_id(4) == 1, "MPI_LOCALRANKID=5 (before LOCAL_RANK) of 4 devices: device 1");
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "3", 1);
  expect(default_device_id(2) == 1, "OMPI_COMM_WORLD_LOCAL_RANK=3 of 2 devices: device 1");
  expect(default_device_id(1) == 0, "one visible device (CUDA_VISIBLE_DEVICES narrowed): device 0");
  expect(
      parse_options({}, 2).device_id == 1 && parse_options({{"device_id", "0"}}, 2).device_id == 0,
      "the options' default follows the local rank; a device_id given wins");
  for (const char* name : names) unsetenv(name);
  for (const auto& [name, value] : saved) setenv(name.c_str(), value.c_str(), 1);
}

// out = x + x on the device, x of `elem` type and shape [n].
std::string add_model(int elem, int64_t n) {
  onnx::ModelProto m;
  m.set_ir_version(10);
  m.add_opset_import()->set_version(18);
  auto* g = m.mutable_graph();
  g->set_name("double");
  auto declare = [&](onnx::ValueInfoProto* v, const char* name) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(elem);
    t->mutable_shape()->add_dim()->set_dim_value(n);
  };
  declare(g->add_input(), "x");
  declare(g->add_output(), "out");
  auto* node = g->add_node();
  node->set_op_type("Add");
  node->add_input("x");
  node->add_input("x");
  node->add_output("out");
  return m.SerializeAsString();
}

const std::vector<std::string> kProviders = {"CUDAExecutionProvider", "CPUExecutionProvider"};

Tensor float_input(int64_t n, float scale) {
  Tensor x(DType::Float, {n});
  for (int64_t i = 0; i < n; ++i)
    x.data<float>()[i] = scale * std::sin(0.01f * static_cast<float>(i));
  return x;
}

// Whether out = x + x, element by element, compared as the CPU would compute it.
template <typename T>
bool doubled(const Tensor& x, const Tensor& out) {
  if (out.shape() != x.shape() || out.dtype() != x.dtype()) return false;
  for (int64_t i = 0; i < x.size(); ++i) {
    if (out.data<T>()[i] != static_cast<T>(x.data<T>()[i] + x.data<T>()[i])) return false;
  }
  return true;
}

void check_steady_state(int device_id) {
  std::printf("steady state:\n");
  const int64_t n = (int64_t{3} << 20) + 5;  // 12 MiB: a large block of the device's cache
  InferenceSession session =
      InferenceSession::from_bytes(add_model(onnx::TensorProto::FLOAT, n), {}, kProviders);
  const Tensor x = float_input(n, 3.0f);
  bool ok = true;
  // The first runs find the segments (the second takes the memory pattern's arena).
  for (int run = 0; run < 3; ++run)
    ok = doubled<float>(x, session.run({}, {{"x", x}})[0].tensor()) && ok;
  CachingAllocator& memory = Device::get(device_id).memory();
  const MemoryStats before = memory.stats();
  const MemoryStats pinned_before = pinned_memory().cache().stats();
  size_t free_before = 0, free_after = 0, total = 0;
  cuda::check(cudaMemGetInfo(&free_before, &total), "cudaMemGetInfo");
  for (int run = 0; run < 20; ++run)
    ok = doubled<float>(x, session.run({}, {{"x", x}})[0].tensor()) && ok;
  cuda::check(cudaMemGetInfo(&free_after, &total), "cudaMemGetInfo");
  const MemoryStats after = memory.stats();
  const MemoryStats pinned_after = pinned_memory().cache().stats();
  expect(ok, "out = x + x in every run");
  expect(after.source_allocations == before.source_allocations && before.source_allocations > 0,
         "20 more runs: no cudaMalloc (" + std::to_string(before.segments) + " segments, " +
             std::to_string(before.reserved >> 20) + " MiB reserved)");
  expect(free_after == free_before, "the device's free memory did not change (cudaMemGetInfo)");
  expect(pinned_after.source_allocations == pinned_before.source_allocations,
         "20 more runs: no cudaHostAlloc (" + std::to_string(pinned_before.reserved >> 20) +
             " MiB pinned)");
  expect(after.peak_reserved >= after.reserved && after.reserved >= after.allocated,
         "peak reserved >= reserved >= in use");
}

template <typename T>
void round_trip(const char* name, int elem, DType dtype, int64_t n) {
  Tensor x(dtype, {n});
  for (int64_t i = 0; i < n; ++i) x.data<T>()[i] = static_cast<T>((i * 7919) % 101 - 50);
  InferenceSession session = InferenceSession::from_bytes(add_model(elem, n), {}, kProviders);
  const Tensor out = session.run({}, {{"x", x}})[0].tensor();
  const bool pinned = n == 0 || out.buffer()->allocator() == &pinned_memory();
  expect(doubled<T>(x, out) && pinned, std::string(name) + " [" + std::to_string(n) +
                                           "]: host -> device -> host, out in pinned memory");
}

void check_round_trips() {
  std::printf("copies through the copy stream:\n");
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{1000}, (int64_t{10} << 20) + 1}) {
    round_trip<float>("float", onnx::TensorProto::FLOAT, DType::Float, n);
    round_trip<int64_t>("int64", onnx::TensorProto::INT64, DType::Int64, n);
    round_trip<int8_t>("int8", onnx::TensorProto::INT8, DType::Int8, n);
  }
  cudaPointerAttributes attributes{};
  InferenceSession session =
      InferenceSession::from_bytes(add_model(onnx::TensorProto::FLOAT, 16), {}, kProviders);
  const Tensor out = session.run({}, {{"x", float_input(16, 1.0f)}})[0].tensor();
  cuda::check(cudaPointerGetAttributes(&attributes, out.raw()), "cudaPointerGetAttributes");
  expect(attributes.type == cudaMemoryTypeHost && out.buffer()->on_host(),
         "an output is page-locked host memory the CPU reads");
}

Streams& streams(const ExecutionProvider& provider) {
  return dynamic_cast<const StreamProvider&>(provider).streams();
}

void check_streams() {
  std::printf("streams per session:\n");
  auto a = create_provider("CUDAExecutionProvider");
  auto b = create_provider("CUDAExecutionProvider");
  Streams& sa = streams(*a);
  Streams& sb = streams(*b);
  expect(sa.compute() != sb.compute() && sa.copy() != sb.copy() && sa.compute() != sa.copy(),
         "two providers: a compute and a copy stream each");
  expect(&a->allocator() == &sa.memory() && &sa.memory() != &sb.memory(),
         "each provider's memory is ordered on its own compute stream");
  // A tensor that outlives its provider is released into the streams' pool later.
  Tensor kept = Tensor::empty(DType::Float, {1 << 20}, a->allocator());
  Streams* given_back = &sa;
  a.reset();
  auto c = create_provider("CUDAExecutionProvider");
  expect(&streams(*c) == given_back, "a new provider takes the streams a destroyed one gave back");
  kept = Tensor();
  expect(streams(*c).memory().bytes_in_use() == 0, "the outliving tensor went back to them");
}

void check_device_ids(int count) {
  std::printf("device_id (%d devices):\n", count);
  try {
    create_provider("CUDAExecutionProvider", {{"device_id", std::to_string(count)}});
    expect(false, "device_id " + std::to_string(count) + " is refused");
  } catch (const InvalidArgument& e) {
    expect(std::string(e.what()).find("device_id") != std::string::npos,
           std::string("device_id ") + std::to_string(count) + " is refused: " + e.what());
  }
  for (int id = 0; id < count && id < 4; ++id) {
    const std::string name = "device_id=" + std::to_string(id);
    auto provider = create_provider("CUDAExecutionProvider", {{"device_id", std::to_string(id)}});
    void* ptr = provider->allocator().allocate(4096);
    cudaPointerAttributes attributes{};
    cuda::check(cudaPointerGetAttributes(&attributes, ptr), "cudaPointerGetAttributes");
    provider->allocator().release(ptr, 4096);
    expect(attributes.type == cudaMemoryTypeDevice && attributes.device == id,
           name + ": the provider's memory is on device " + std::to_string(id));
    SessionOptions options;
    options.provider_options["CUDAExecutionProvider"] = {{"device_id", std::to_string(id)}};
    InferenceSession session = InferenceSession::from_bytes(
        add_model(onnx::TensorProto::FLOAT, 4099), options, kProviders);
    const Tensor x = float_input(4099, 2.0f);
    expect(doubled<float>(x, session.run({}, {{"x", x}})[0].tensor()), name + ": out = x + x");
  }
}

void check_memory_limit() {
  std::printf("gpu_mem_limit:\n");
  SessionOptions options;
  options.provider_options["CUDAExecutionProvider"] = {{"gpu_mem_limit", std::to_string(4 << 20)}};
  InferenceSession small =
      InferenceSession::from_bytes(add_model(onnx::TensorProto::FLOAT, 1000), options, kProviders);
  const Tensor x = float_input(1000, 1.0f);
  expect(doubled<float>(x, small.run({}, {{"x", x}})[0].tensor()),
         "4 KB under a 4 MiB limit: runs");
  InferenceSession large = InferenceSession::from_bytes(
      add_model(onnx::TensorProto::FLOAT, 4 << 20), options, kProviders);
  try {
    large.run({}, {{"x", float_input(4 << 20, 1.0f)}});
    expect(false, "16 MiB under a 4 MiB limit fails");
  } catch (const std::exception& e) {
    expect(std::string(e.what()).find("limit of 4194304 bytes") != std::string::npos,
           std::string("16 MiB under a 4 MiB limit fails: ") + e.what());
  }
}

}  // namespace
}  // namespace graft::cuda

int main() {
  using namespace graft::cuda;
  try {
    check_options();
    check_local_rank();
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
  if (failures > 0) {
    std::printf("%d failed\n", failures);
    return 1;
  }
  std::string why;
  const int count = device_count(&why);
  if (count == 0) {
    std::printf("skipped the device checks: %s\n", why.c_str());
    return 77;
  }
  const int device_id = default_device_id(count);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, device_id);
  std::printf("device %d: %s\n", device_id, prop.name);
  try {
    check_steady_state(device_id);
    check_round_trips();
    check_streams();
    check_device_ids(count);
    check_memory_limit();
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
  std::printf("%d failed\n", failures);
  return failures == 0 ? 0 : 1;
}
