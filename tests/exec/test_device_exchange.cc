// Where allocators say their memory is (Allocator::device), the device-exchange registry, and
// buffers over another library's device memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "exec/device_exchange.h"
#include "exec/error.h"
#include "exec/provider.h"

namespace graft {
namespace {

// Host memory that claims to be a device's, counting what goes through it.
class CountingDeviceMemory : public Allocator {
 public:
  const char* name() const override { return "Counting"; }
  void* allocate(size_t bytes) override {
    ++allocations;
    return cpu_allocator().allocate(bytes);
  }
  void release(void* ptr, size_t bytes) override {
    ++releases;
    cpu_allocator().release(ptr, bytes);
  }
  bool on_host() const override { return false; }
  int allocations = 0;
  int releases = 0;
};

TEST(DeviceExchange, AllocatorsSayWhereTheirMemoryIs) {
  const MemoryDevice host = cpu_allocator().device();
  EXPECT_EQ(host.type, "cpu");
  EXPECT_EQ(host.id, 0);
  CountingDeviceMemory device;
  EXPECT_EQ(device.device().type, "Counting");  // a device allocator that does not say
}

TEST(DeviceExchange, BufferOverForeignDeviceMemoryNeverReleasesIt) {
  CountingDeviceMemory device;
  std::vector<float> storage = {1, 2, 3, 4};
  auto owner = std::make_shared<int>(0);
  std::weak_ptr<int> watch = owner;
  {
    Tensor t(DType::Float, {2, 2},
             std::make_shared<Buffer>(storage.data(), device, std::move(owner)));
    EXPECT_FALSE(t.on_host());
    EXPECT_EQ(t.buffer()->allocator(), &device);
    EXPECT_EQ(t.raw(), storage.data());
    EXPECT_FALSE(watch.expired());
  }
  EXPECT_TRUE(watch.expired());  // the owner is let go with the last tensor
  EXPECT_EQ(device.allocations, 0);
  EXPECT_EQ(device.releases, 0);
  EXPECT_EQ(storage, (std::vector<float>{1, 2, 3, 4}));  // the elements are left as they were
}

// An exchange over CountingDeviceMemory, to check the registry hands back what was registered.
class FakeExchange final : public DeviceExchange {
 public:
  Allocator& memory(int) override { return memory_; }
  Tensor wrap(void* data, DType dtype, const Shape& shape, int,
              std::shared_ptr<void> keep_alive) override {
    return Tensor(dtype, shape, std::make_shared<Buffer>(data, memory_, std::move(keep_alive)));
  }
  int64_t stream(int id) override { return 100 + id; }
  void hand_over(const Tensor&, int64_t) override {}
  void copy_to(void* dst, const Tensor& src) override { std::memcpy(dst, src.raw(), src.nbytes()); }
  void synchronize(const Tensor&) override {}

 private:
  CountingDeviceMemory memory_;
};

TEST(DeviceExchange, RegistryFindsTypesAndNamesTheMissing) {
  static FakeExchange fake;
  register_device_exchange("fake", fake);
  EXPECT_EQ(&device_exchange("fake"), &fake);
  EXPECT_EQ(device_exchange("fake").stream(2), 102);
  try {
    device_exchange("tpu");
    FAIL() << "an unknown device type was found";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown device type 'tpu'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("fake"), std::string::npos) << e.what();
  }
}

TEST(DeviceExchange, CudaIsNamedWhetherBuiltOrNot) {
  DeviceExchange* cuda = nullptr;
  try {
    cuda = &device_exchange("cuda");
  } catch (const NotImplemented& e) {
    EXPECT_NE(std::string(e.what()).find("-DGRAFT_USE_CUDA=ON"), std::string::npos) << e.what();
    return;
  }
  const auto providers = available_providers();
  if (std::find(providers.begin(), providers.end(), "CUDAExecutionProvider") == providers.end()) {
    EXPECT_THROW(cuda->memory(0), Fail);  // built with CUDA, no device here
    return;
  }
  EXPECT_EQ(cuda->memory(0).device().type, "cuda");
  EXPECT_EQ(cuda->memory(0).device().id, 0);
  EXPECT_FALSE(cuda->memory(0).on_host());
}

}  // namespace
}  // namespace graft
