// The generic group generator on small layouts small enough to enumerate by hand.
#include "parallel/rank_generator.hpp"

#include <stdexcept>

#include <gtest/gtest.h>

namespace foldplan {
namespace {

using Groups = std::vector<RankGroup>;

const RankLayout kTwoByThree = {{"a", 2}, {"b", 3}}; // rank = a + 2·b

TEST(RankGenerator, FastestDimensionGivesAdjacentRanks) {
  EXPECT_EQ(generate_rank_groups(kTwoByThree, {"a"}), (Groups{{0, 1}, {2, 3}, {4, 5}}));
}

TEST(RankGenerator, SlowerDimensionIsStridedByTheFasterSizes) {
  EXPECT_EQ(generate_rank_groups(kTwoByThree, {"b"}), (Groups{{0, 2, 4}, {1, 3, 5}}));
}

TEST(RankGenerator, AllOrNoDimensionsGiveTheWorldOrSingletons) {
  EXPECT_EQ(generate_rank_groups(kTwoByThree, {"b", "a"}), (Groups{{0, 1, 2, 3, 4, 5}}));
  EXPECT_EQ(generate_rank_groups(kTwoByThree, {}), (Groups{{0}, {1}, {2}, {3}, {4}, {5}}));
}

// Megatron's order: groups enumerate the fixed dimensions with the leftmost fastest, so varying
// the middle of three dimensions gives [0,2] [1,3] [4,6] [5,7].
TEST(RankGenerator, GroupsAreOrderedByTheFixedDimensionsLeftmostFastest) {
  const RankLayout layout = {{"x", 2}, {"y", 2}, {"z", 2}};
  EXPECT_EQ(generate_rank_groups(layout, {"y"}), (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
  EXPECT_EQ(generate_rank_groups(layout, {"x", "z"}), (Groups{{0, 1, 4, 5}, {2, 3, 6, 7}}));
  // Within a group the first varying dimension is the fastest: x then z.
  const RankLayout uneven = {{"x", 3}, {"y", 2}, {"z", 2}};
  EXPECT_EQ(generate_rank_groups(uneven, {"z", "x"}),
            (Groups{{0, 1, 2, 6, 7, 8}, {3, 4, 5, 9, 10, 11}}));
}

TEST(RankGenerator, SizeOneDimensionsChangeNothing) {
  const RankLayout padded = {{"a", 2}, {"unit", 1}, {"b", 3}};
  EXPECT_EQ(generate_rank_groups(padded, {"b", "unit"}), generate_rank_groups(kTwoByThree, {"b"}));
}

TEST(RankGenerator, UnknownDimensionIsAProgrammingError) {
  EXPECT_THROW(generate_rank_groups(kTwoByThree, {"c"}), std::invalid_argument);
}

TEST(RankGenerator, CoordinatesAreTheMixedRadixDigits) {
  EXPECT_EQ(layout_world_size(kTwoByThree), 6);
  EXPECT_EQ(rank_coordinates(kTwoByThree, 5), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(rank_coordinates(kTwoByThree, 2), (std::vector<std::int64_t>{0, 1}));
  EXPECT_EQ(rank_at(kTwoByThree, {1, 1}), 3);
  for (std::int64_t rank = 0; rank < 6; ++rank) {
    EXPECT_EQ(rank_at(kTwoByThree, rank_coordinates(kTwoByThree, rank)), rank);
  }
  EXPECT_THROW(rank_at(kTwoByThree, {1}), std::invalid_argument);
}

} // namespace
} // namespace foldplan

namespace foldplan {
namespace {

// group_holding_rank must agree with the full generator for every rank and every mask.
TEST(RankGenerator, GroupHoldingRankMatchesTheGeneratedGroups) {
  const RankLayout layout = {{"tp", 2}, {"cp", 2}, {"ep", 1}, {"dp", 3}, {"pp", 2}};
  const std::vector<std::vector<std::string>> masks = {
      {"tp"}, {"cp"}, {"dp"}, {"pp"}, {"tp", "cp"}, {"dp", "cp"}, {"tp", "cp", "dp"}, {"tp", "pp"}};
  for (const auto& mask : masks) {
    for (const RankGroup& group : generate_rank_groups(layout, mask)) {
      for (const std::int64_t rank : group) {
        EXPECT_EQ(group_holding_rank(layout, mask, rank), group) << "rank " << rank;
      }
    }
  }
}

} // namespace
} // namespace foldplan
