#include "kernels/bf16_rounding.hpp"

#include <cmath>

#include <gtest/gtest.h>

namespace foldplan::kernels {
namespace {

// bf16's unit in the last place at 1 is 1/128.
TEST(Bf16Rounding, RoundsToNearestEven) {
  EXPECT_EQ(round_to_bf16(1.0f), 1.0f);
  EXPECT_EQ(round_to_bf16(1.0f + 1.0f / 512), 1.0f);              // a quarter: down
  EXPECT_EQ(round_to_bf16(1.0f + 1.0f / 256), 1.0f);              // halfway: to even (down)
  EXPECT_EQ(round_to_bf16(1.0f + 3.0f / 256), 1.0f + 1.0f / 64);  // halfway: to even (up)
  EXPECT_EQ(round_to_bf16(1.0f + 3.0f / 512), 1.0f + 1.0f / 128); // three quarters: up
  EXPECT_EQ(round_to_bf16(1.0f + 1.0f / 128), 1.0f + 1.0f / 128); // representable: unchanged
  EXPECT_EQ(round_to_bf16(-3.14159f), -3.140625f);
  EXPECT_TRUE(std::isnan(round_to_bf16(std::nanf(""))));
}

} // namespace
} // namespace foldplan::kernels
