#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "exec/dtype.h"

namespace graft {
namespace {

TEST(Float16, RoundTripsExactValuesAndRoundsToNearestEven) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f}) {
    EXPECT_EQ(static_cast<float>(Float16(f)), f) << f;
  }
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1.0).
  EXPECT_EQ(static_cast<float>(Float16(1.0f + std::ldexp(1.0f, -11))), 1.0f);
  EXPECT_EQ(static_cast<float>(Float16(1.0f + 3 * std::ldexp(1.0f, -11))),
            1.0f + std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isinf(static_cast<float>(Float16(70000.0f))));
  EXPECT_TRUE(std::isnan(static_cast<float>(Float16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(Float16(-0.0f).bits, 0x8000);
}

TEST(BFloat16, KeepsTheTopSixteenBitsWithRounding) {
  EXPECT_EQ(BFloat16(1.0f).bits, 0x3f80);
  EXPECT_EQ(static_cast<float>(BFloat16(3.140625f)), 3.140625f);
  EXPECT_EQ(static_cast<float>(BFloat16(1.0f + std::ldexp(1.0f, -8))), 1.0f);  // tie to even
  EXPECT_TRUE(std::isnan(static_cast<float>(BFloat16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(SmallFloat, E4M3FNLimitsAndSaturation) {
  EXPECT_EQ(float_to_small_float(DType::Float8E4M3FN, 448.0f, true), 0x7e);
  EXPECT_EQ(small_float_to_float(DType::Float8E4M3FN, 0x7e), 448.0f);
  EXPECT_EQ(float_to_small_float(DType::Float8E4M3FN, 1e6f, true), 0x7e);
  EXPECT_TRUE(std::isnan(small_float_to_float(
      DType::Float8E4M3FN, float_to_small_float(DType::Float8E4M3FN, 1e6f, false))));
  EXPECT_EQ(small_float_to_float(DType::Float8E4M3FN, 0x01),
            std::ldexp(1.0f, -9));  // smallest subnormal
}

TEST(SmallFloat, EveryEncodingRoundTrips) {
  for (DType d : {DType::Float8E4M3FN, DType::Float8E4M3FNUZ, DType::Float8E5M2,
                  DType::Float8E5M2FNUZ, DType::Float4E2M1}) {
    int count = d == DType::Float4E2M1 ? 16 : 256;
    for (int b = 0; b < count; ++b) {
      float f = small_float_to_float(d, static_cast<uint8_t>(b));
      if (std::isnan(f)) continue;
      uint8_t back = float_to_small_float(d, f, false);
      EXPECT_EQ(small_float_to_float(d, back), f) << dtype_name(d) << " bits " << b;
    }
  }
}

TEST(SmallFloat, E5M2HasInfinity) {
  EXPECT_EQ(float_to_small_float(DType::Float8E5M2, std::numeric_limits<float>::infinity(), false),
            0x7c);
  EXPECT_EQ(float_to_small_float(DType::Float8E5M2, 1e9f, true), 0x7b);
  EXPECT_EQ(small_float_to_float(DType::Float8E5M2, 0x7b), 57344.0f);
}

}  // namespace
}  // namespace graft
