#include "models/vocab_padding.hpp"

#include <gtest/gtest.h>

namespace foldplan {
namespace {

TEST(VocabPadding, RoundsUpToAMultipleOf128TimesTp) {
  EXPECT_EQ(padded_vocab_size(32000, 1), 32000); // 250·128
  EXPECT_EQ(padded_vocab_size(32000, 2), 32000); // 125·256
  EXPECT_EQ(padded_vocab_size(32000, 8), 32768);
  EXPECT_EQ(padded_vocab_size(50257, 1), 50304);
  EXPECT_EQ(padded_vocab_size(50257, 8), 51200);
  EXPECT_EQ(padded_vocab_size(129280, 8), 130048);
  EXPECT_EQ(padded_vocab_size(1, 4), 512);
}

TEST(VocabPadding, HonoursMakeVocabSizeDivisibleBy) {
  EXPECT_EQ(padded_vocab_size(100, 1, 64), 128);
  EXPECT_EQ(padded_vocab_size(100, 3, 1), 102);
  EXPECT_EQ(padded_vocab_size(129, 1, 128), 256);
}

} // namespace
} // namespace foldplan
