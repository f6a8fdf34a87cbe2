#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "exec/kernel.h"
#include "exec/tensor.h"
#include "exec/value.h"

namespace graft {
namespace {

// A block of `count` floats set to 7 and released, so that the allocator's cache hands the
// same memory to the next request of that size.
void dirty_block(int64_t count) {
  Tensor t(DType::Float, {count});
  std::fill_n(t.data<float>(), count, 7.0f);
}

TEST(TensorAlloc, ConstructorZeroFillsReusedMemory) {
  constexpr int64_t kCount = 1 << 16;  // large enough for the allocator to cache
  dirty_block(kCount);
  Tensor t(DType::Float, {kCount});
  EXPECT_TRUE(
      std::all_of(t.data<float>(), t.data<float>() + kCount, [](float v) { return v == 0; }));
}

TEST(TensorAlloc, OutputZeroedIsZeroWhateverTheMemoryHeld) {
  constexpr int64_t kCount = 1 << 16;
  const std::string desc = "node 'n' (Test)";
  for (int round = 0; round < 3; ++round) {
    dirty_block(kCount);
    Value out;
    KernelContext ctx(desc, {}, {&out}, nullptr);
    Tensor& y = ctx.output_zeroed(0, DType::Float, {kCount});
    ASSERT_EQ(y.size(), kCount);
    EXPECT_TRUE(
        std::all_of(y.data<float>(), y.data<float>() + kCount, [](float v) { return v == 0; }));
  }
}

TEST(TensorAlloc, EmptyHasTheShapeAndConstructsStrings) {
  Tensor f = Tensor::empty(DType::Float, {3, 4});
  EXPECT_EQ(f.shape(), (Shape{3, 4}));
  EXPECT_EQ(f.nbytes(), 48u);
  Tensor s = Tensor::empty(DType::String, {2});
  EXPECT_EQ(s.data<std::string>()[0], "");
  EXPECT_EQ(s.data<std::string>()[1], "");
  EXPECT_THROW(Tensor::empty(DType::Float, {2, -1}), std::exception);
}

}  // namespace
}  // namespace graft
