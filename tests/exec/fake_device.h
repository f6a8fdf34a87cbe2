// A device provider for the placement tests, without a GPU: "FakeDeviceProvider" keeps its values
// in memory the CPU cannot read (host memory handed out at addresses no host load can reach, so a
// host kernel that touches a device value crashes instead of passing), runs Relu, Reshape,
// Gather, Concat and Cast there, and counts every copy and every kernel it runs. Its Reshape
// reads the shape on the host (KernelDef::host_inputs), its Gather takes only axis 0 and its Cast
// makes no strings (KernelDef::accepts). Registered for tests only, never by default.
#pragma once

#include <map>
#include <string>

#include "exec/allocator.h"
#include "exec/tensor.h"

namespace graft::test_util {

inline constexpr const char* kFakeDevice = "FakeDeviceProvider";

// The fake device's memory. Its copy_from_host / copy_to_host are the only ways in and out.
Allocator& fake_device_memory();
// Whether `t` lives in fake device memory.
bool on_fake_device(const Tensor& t);
// The host address behind a fake device tensor's elements, for the fake kernels and for tests
// that look at a value where it lives.
void* device_address(const Tensor& t);
template <typename T>
T* device_elements(const Tensor& t) {
  return static_cast<T*>(device_address(t));
}

// What the fake device did since the last reset_fake_device().
struct FakeDeviceLog {
  int copies_in = 0;   // MemcpyFromHost runs that copied (a device value passes through)
  int copies_out = 0;  // MemcpyToHost runs
  std::map<std::string, int> ran;  // the other kernels run, by op type
};
FakeDeviceLog& fake_device_log();
void reset_fake_device();

}  // namespace graft::test_util
