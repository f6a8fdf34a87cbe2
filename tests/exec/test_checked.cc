// Overflow-checked size arithmetic (exec/checked.h) and the memory limit (exec/memory_limit.h):
// sizes that do not fit raise InvalidArgument naming what was computed; allocations past the limit
// raise Fail naming the tensor, the bytes and the limit. Expected values are worked out by hand
// (2^62 * 4 = 2^64 wraps to 0 in 64 bits).
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "exec/allocator.h"
#include "exec/checked.h"
#include "exec/error.h"
#include "exec/memory_limit.h"
#include "exec/tensor.h"

namespace graft {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(Checked, ArithmeticThatFitsIsExact) {
  EXPECT_EQ(checked_mul<int64_t>(int64_t{1} << 31, int64_t{1} << 31, "n"), int64_t{1} << 62);
  EXPECT_EQ(checked_add<int64_t>(kMax - 1, 1, "n"), kMax);
  EXPECT_EQ(checked_sub<int64_t>(-kMax, 1, "n"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(checked_byte_count(int64_t{1} << 61, 4, "b"), size_t{1} << 63);
  EXPECT_EQ(checked_round_up(65, 64, "r"), 128u);
  EXPECT_EQ(checked_round_up(128, 64, "r"), 128u);
}

TEST(Checked, OverflowNamesWhatAndTheOperands) {
  EXPECT_EQ(error_of([] { checked_mul<int64_t>(int64_t{1} << 32, int64_t{1} << 31, "count"); }),
            "count: 4294967296 * 2147483648 overflows");
  EXPECT_EQ(error_of([] { checked_add<int64_t>(kMax, 1, "offset"); }),
            "offset: 9223372036854775807 + 1 overflows");
  EXPECT_NE(error_of([] { checked_byte_count(int64_t{1} << 62, 4, "bytes"); }), "");
  EXPECT_NE(error_of([] { checked_byte_count(-1, 4, "bytes"); }), "");
  EXPECT_NE(error_of([] { checked_round_up(SIZE_MAX - 3, 64, "rounding"); }), "");
}

TEST(Checked, ShapeSizeRefusesACountPast64Bits) {
  EXPECT_EQ(shape_size({int64_t{1} << 31, int64_t{1} << 31}), int64_t{1} << 62);
  const std::string message = error_of([] { shape_size({int64_t{1} << 31, int64_t{1} << 31, 2}); });
  EXPECT_EQ(message,
            "shape [2147483648, 2147483648, 2] has more elements than a 64-bit count holds");
}

TEST(Checked, ATensorWhoseBytesOverflowIsRefusedBeforeAllocating) {
  // 2^62 floats: the count fits, the byte count (2^64) wraps to 0.
  const size_t before = cpu_allocator().bytes_in_use();
  const std::string message = error_of([] { Tensor::empty(DType::Float, {int64_t{1} << 62}); });
  EXPECT_NE(message.find("a float tensor of shape [4611686018427387904]"), std::string::npos)
      << message;
  EXPECT_NE(message.find("overflow"), std::string::npos) << message;
  EXPECT_EQ(cpu_allocator().bytes_in_use(), before);
}

TEST(MemoryLimit, AScopeRefusesAllocationsPastItAndRestoresTheOneBefore) {
  EXPECT_EQ(thread_memory_limit(), 0u);
  {
    const MemoryLimitScope limit(size_t{1} << 20);
    EXPECT_EQ(thread_memory_limit(), size_t{1} << 20);
    // Whatever else is in use, 1 KiB under a fresh scope of 1 MiB plus what is in use fits.
    const MemoryLimitScope roomy(cpu_allocator().bytes_in_use() + (size_t{1} << 20));
    Tensor small = Tensor::empty(DType::Float, {256});
    EXPECT_EQ(small.size(), 256);
    const std::string message = error_of([] { Tensor::empty(DType::Float, {1 << 19}); });
    EXPECT_NE(message.find("cannot allocate 2097152 bytes"), std::string::npos) << message;
    EXPECT_NE(message.find("a float tensor of shape [524288]"), std::string::npos) << message;
    EXPECT_NE(message.find("session.memory_limit_bytes"), std::string::npos) << message;
  }
  EXPECT_EQ(thread_memory_limit(), 0u);
}

TEST(MemoryLimit, TheDefaultIsFourFifthsOfPhysicalMemoryAtMost) {
  const size_t limit = default_memory_limit();
  EXPECT_GT(limit, 0u);
  const std::string message =
      error_of([&] { Tensor::empty(DType::UInt8, {static_cast<int64_t>(limit / 4 * 5)}); });
  EXPECT_NE(message.find("default memory limit"), std::string::npos) << message;
}

}  // namespace
}  // namespace graft
