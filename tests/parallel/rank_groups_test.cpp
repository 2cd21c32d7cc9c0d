// Rank groups against the worked examples of Megatron's own generator (reference §1.5), then the
// invariants every configuration must keep.
#include "parallel/rank_groups.hpp"

#include <algorithm>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

namespace foldplan {
namespace {

using Groups = std::vector<RankGroup>;

// [first, first + 1, …, last]
RankGroup span_of(std::int64_t first, std::int64_t last) {
  RankGroup group(static_cast<std::size_t>(last - first + 1));
  std::iota(group.begin(), group.end(), first);
  return group;
}

ParallelConfig folded(std::int64_t world, ParallelSizes sizes) {
  return make_parallel_config(world, sizes, /*folding=*/true);
}

// Reference §1.5: world 16; attention TP2 CP2 PP2 (DP2); experts ETP1 EP4 (EDP2).
ParallelConfig worked_example() {
  return folded(16, {.tp = 2, .cp = 2, .pp = 2, .vpp = 1, .ep = 4, .etp = 1});
}

TEST(RankGroups, WorkedExampleAttentionGroups) {
  const ParallelConfig config = worked_example();
  ASSERT_EQ(config.dp, 2);
  const RankGroups groups = all_rank_groups(config);
  const auto& attention = groups.attention;
  EXPECT_EQ(groups_named(attention, "tp"),
            (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}, {12, 13}, {14, 15}}));
  EXPECT_EQ(groups_named(attention, "cp"),
            (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}, {8, 10}, {9, 11}, {12, 14}, {13, 15}}));
  EXPECT_EQ(groups_named(attention, "dp"),
            (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}, {8, 12}, {9, 13}, {10, 14}, {11, 15}}));
  EXPECT_EQ(groups_named(attention, "dp-cp"),
            (Groups{{0, 2, 4, 6}, {1, 3, 5, 7}, {8, 10, 12, 14}, {9, 11, 13, 15}}));
  EXPECT_EQ(groups_named(attention, "tp-cp"),
            (Groups{span_of(0, 3), span_of(4, 7), span_of(8, 11), span_of(12, 15)}));
  EXPECT_EQ(groups_named(attention, "tp-dp"),
            (Groups{{0, 1, 4, 5}, {2, 3, 6, 7}, {8, 9, 12, 13}, {10, 11, 14, 15}}));
  EXPECT_EQ(groups_named(attention, "tp-cp-dp"), (Groups{span_of(0, 7), span_of(8, 15)}));
  EXPECT_EQ(groups_named(attention, "mp"),
            (Groups{{0, 1, 8, 9}, {2, 3, 10, 11}, {4, 5, 12, 13}, {6, 7, 14, 15}}));
  EXPECT_EQ(groups_named(attention, "pp"),
            (Groups{{0, 8}, {1, 9}, {2, 10}, {3, 11}, {4, 12}, {5, 13}, {6, 14}, {7, 15}}));
}

TEST(RankGroups, WorkedExampleExpertGroups) {
  const ParallelConfig config = worked_example();
  ASSERT_EQ(config.edp, 2);
  const RankGroups groups = all_rank_groups(config);
  const auto& moe = groups.moe;
  Groups singletons;
  for (std::int64_t rank = 0; rank < 16; ++rank)
    singletons.push_back({rank});
  EXPECT_EQ(groups_named(moe, "etp"), singletons);
  // Each EP group is exactly one attention TP×CP group: EP folds onto TP×CP.
  const Groups ep = {span_of(0, 3), span_of(4, 7), span_of(8, 11), span_of(12, 15)};
  EXPECT_EQ(groups_named(moe, "ep"), ep);
  EXPECT_EQ(groups_named(moe, "etp-ep"), ep);
  EXPECT_EQ(groups_named(moe, "ep"), groups_named(groups.attention, "tp-cp"));
  EXPECT_EQ(groups_named(moe, "edp"),
            (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}, {8, 12}, {9, 13}, {10, 14}, {11, 15}}));
  EXPECT_EQ(groups_named(moe, "etp-ep-pp"),
            (Groups{{0, 1, 2, 3, 8, 9, 10, 11}, {4, 5, 6, 7, 12, 13, 14, 15}}));
  EXPECT_EQ(groups_named(moe, "pp"), groups_named(groups.attention, "pp"));
}

// The per-rank columns of §1.5's table: (tp, cp, dp, pp | etp, ep, edp, pp) of ranks 0–7, and
// ranks 8–15 the same with pp = 1.
TEST(RankGroups, WorkedExampleCoordinates) {
  const ParallelConfig config = worked_example();
  const std::int64_t table[8][7] = {
      {0, 0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 1, 0}, {0, 1, 0, 0, 0, 2, 0}, {1, 1, 0, 0, 0, 3, 0},
      {0, 0, 1, 0, 0, 0, 1}, {1, 0, 1, 0, 0, 1, 1}, {0, 1, 1, 0, 0, 2, 1}, {1, 1, 1, 0, 0, 3, 1}};
  for (std::int64_t pp = 0; pp < 2; ++pp) {
    for (std::int64_t row = 0; row < 8; ++row) {
      const auto& r = table[row];
      const RankCoordinates expected{{r[0], r[1], r[2], pp}, {r[4], r[5], r[6], pp}};
      EXPECT_EQ(coordinates_of_rank(config, row + 8 * pp), expected) << "rank " << row + 8 * pp;
    }
  }
}

// §1.5 "other cases": 8 GPUs, TP4 (DP2), ETP1 EP8 — EP spans two attention DP replicas.
TEST(RankGroups, ExpertGroupLargerThanDataParallel) {
  const RankGroups groups = all_rank_groups(folded(8, {.tp = 4, .ep = 8, .etp = 1}));
  EXPECT_EQ(groups_named(groups.attention, "tp"), (Groups{span_of(0, 3), span_of(4, 7)}));
  EXPECT_EQ(groups_named(groups.attention, "dp"), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(groups_named(groups.moe, "ep"), (Groups{span_of(0, 7)}));
  EXPECT_EQ(groups_named(groups.moe, "edp").size(), 8u);
}

// §1.5 "other cases": 16 GPUs, TP2 PP2 (DP4), ETP2 EP4 (EDP1) — EP strided by ETP.
TEST(RankGroups, ExpertTensorParallelStridesExpertGroups) {
  const ParallelConfig config = folded(16, {.tp = 2, .pp = 2, .ep = 4, .etp = 2});
  ASSERT_EQ(config.edp, 1);
  const RankGroups groups = all_rank_groups(config);
  EXPECT_EQ(groups_named(groups.moe, "etp"), groups_named(groups.attention, "tp"));
  EXPECT_EQ(groups_named(groups.moe, "etp")[1], (RankGroup{2, 3}));
  EXPECT_EQ(groups_named(groups.moe, "ep"),
            (Groups{{0, 2, 4, 6}, {1, 3, 5, 7}, {8, 10, 12, 14}, {9, 11, 13, 15}}));
}

// §1.5 "other cases": 16 GPUs, TP4 CP2 (DP2), ETP2 EP4 (EDP2).
TEST(RankGroups, ExpertGroupsFoldOverContextParallel) {
  const RankGroups groups = all_rank_groups(folded(16, {.tp = 4, .cp = 2, .ep = 4, .etp = 2}));
  EXPECT_EQ(groups_named(groups.moe, "etp")[0], (RankGroup{0, 1}));
  EXPECT_EQ(groups_named(groups.moe, "ep"),
            (Groups{{0, 2, 4, 6}, {1, 3, 5, 7}, {8, 10, 12, 14}, {9, 11, 13, 15}}));
  EXPECT_EQ(groups_named(groups.moe, "edp"),
            (Groups{{0, 8}, {1, 9}, {2, 10}, {3, 11}, {4, 12}, {5, 13}, {6, 14}, {7, 15}}));
}

// 128 GPUs, TP2 PP8 (DP8), ETP1 EP8 (EDP2): the groups rank 0 belongs to.
TEST(RankGroups, GroupsHoldingRankZeroOn128Gpus) {
  const ParallelConfig config = folded(128, {.tp = 2, .pp = 8, .ep = 8, .etp = 1});
  ASSERT_EQ(config.dp, 8);
  ASSERT_EQ(config.edp, 2);
  const RankGroups mine = groups_holding_rank(all_rank_groups(config), 0);
  EXPECT_EQ(groups_named(mine.attention, "tp"), (Groups{{0, 1}}));
  EXPECT_EQ(groups_named(mine.attention, "dp"), (Groups{{0, 2, 4, 6, 8, 10, 12, 14}}));
  EXPECT_EQ(groups_named(mine.attention, "pp"), (Groups{{0, 16, 32, 48, 64, 80, 96, 112}}));
  EXPECT_EQ(groups_named(mine.moe, "ep"), (Groups{span_of(0, 7)}));
  EXPECT_EQ(groups_named(mine.moe, "edp"), (Groups{{0, 8}}));
  EXPECT_EQ(groups_named(mine.moe, "pp"), (Groups{{0, 16, 32, 48, 64, 80, 96, 112}}));

  const RankGroups rank_77 = groups_holding_rank(all_rank_groups(config), 77);
  // 77 = 1 + 2·(6 + 8·4): tp 1, dp 6, pp 4; and 77 = 5 + 8·(1 + 2·4): ep 5, edp 1, pp 4.
  EXPECT_EQ(groups_named(rank_77.attention, "tp"), (Groups{{76, 77}}));
  EXPECT_EQ(groups_named(rank_77.moe, "ep"), (Groups{span_of(72, 79)}));
  EXPECT_EQ(groups_named(rank_77.moe, "edp"), (Groups{{69, 77}}));
}

// Without folding (pre-folding Megatron): ETP = TP and EP is carved out of DP. 16 GPUs, TP2 PP2
// (DP4), EP2: DP groups [0,2,4,6]…; old Megatron splits each into EP groups of consecutive DP
// members [0,2] [4,6] and expert-data groups [0,4] [2,6].
TEST(RankGroups, WithoutFoldingExpertGroupsSitInsideDataParallel) {
  const ParallelConfig config = make_parallel_config(16, {.tp = 2, .pp = 2, .ep = 2}, false);
  ASSERT_EQ(config.etp, 2);
  ASSERT_EQ(config.edp, 2);
  const RankGroups groups = all_rank_groups(config);
  EXPECT_EQ(groups_named(groups.attention, "dp"),
            (Groups{{0, 2, 4, 6}, {1, 3, 5, 7}, {8, 10, 12, 14}, {9, 11, 13, 15}}));
  EXPECT_EQ(groups_named(groups.moe, "etp"), groups_named(groups.attention, "tp"));
  EXPECT_EQ(groups_named(groups.moe, "ep"),
            (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}, {8, 10}, {9, 11}, {12, 14}, {13, 15}}));
  EXPECT_EQ(groups_named(groups.moe, "edp"),
            (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}, {8, 12}, {9, 13}, {10, 14}, {11, 15}}));
}

// With CP, pre-folding Megatron's one generator (order tp-cp-ep-dp-pp) puts EP after TP and CP:
// an EP group spans TP·CP·EP consecutive ranks, which the paper blames for all-to-alls that
// leave the node. 16 GPUs, TP2 CP2 (DP4), EP2: EP groups stride 4; expert data parallelism spans
// CP and the rest of DP. Folding the same sizes keeps EP on neighbours.
TEST(RankGroups, WithoutFoldingExpertGroupsStrideOverContextParallel) {
  const ParallelConfig config = make_parallel_config(16, {.tp = 2, .cp = 2, .ep = 2}, false);
  ASSERT_EQ(config.edp, 4);
  const RankGroups unfolded = all_rank_groups(config, /*folding=*/false);
  EXPECT_EQ(groups_named(unfolded.moe, "ep")[0], (RankGroup{0, 4}));
  EXPECT_EQ(groups_named(unfolded.moe, "edp")[0], (RankGroup{0, 2, 8, 10}));
  EXPECT_EQ(groups_named(unfolded.moe, "etp-ep")[0], (RankGroup{0, 1, 4, 5}));
  // Rank 10 = tp 0, cp 1, ep 0, dp' 1: expert data-parallel index cp + CP·dp' = 3.
  EXPECT_EQ(coordinates_of_rank(config, 10, false).moe,
            (MoeCoordinates{.etp = 0, .ep = 0, .edp = 3, .pp = 0}));
  const RankGroups folded_groups = all_rank_groups(config, /*folding=*/true);
  EXPECT_EQ(groups_named(folded_groups.moe, "ep")[0], (RankGroup{0, 2}));
}

TEST(RankGroups, FamiliesComeInAFixedOrderAndPrintSo) {
  const RankGroups groups = all_rank_groups(folded(2, {.tp = 2, .ep = 2, .etp = 1}));
  EXPECT_EQ(rank_groups_to_json(groups).dump(),
            R"({"attention":{"tp":[[0,1]],"cp":[[0],[1]],"dp":[[0],[1]],"pp":[[0],[1]],)"
            R"("tp-cp":[[0,1]],"dp-cp":[[0],[1]],"tp-cp-dp":[[0,1]],"tp-dp":[[0,1]],)"
            R"("mp":[[0,1]]},"moe":{"etp":[[0],[1]],"ep":[[0,1]],"edp":[[0],[1]],)"
            R"("etp-ep":[[0,1]],"pp":[[0],[1]],"etp-ep-pp":[[0,1]]}})");
  EXPECT_EQ(rank_coordinates_to_json(coordinates_of_rank(worked_example(), 13)).dump(),
            R"({"attention":{"tp":1,"cp":0,"dp":1,"pp":1},)"
            R"("moe":{"etp":0,"ep":1,"edp":1,"pp":1}})");
}

TEST(RankGroups, MismatchedWorldsAreAProgrammingError) {
  ParallelConfig config = worked_example();
  config.edp = 4;
  EXPECT_THROW(all_rank_groups(config), std::invalid_argument);
  EXPECT_THROW(groups_named(all_rank_groups(worked_example()).moe, "dp"), std::invalid_argument);
}

// ---- Invariants over every factorisation of several world sizes ----------------------------

std::vector<ParallelConfig> every_config(std::int64_t world, bool folding) {
  std::vector<ParallelConfig> configs;
  for (std::int64_t pp = 1; pp <= world; ++pp) {
    if (world % pp != 0)
      continue;
    const std::int64_t stage = world / pp;
    for (std::int64_t tp = 1; tp <= stage; ++tp) {
      for (std::int64_t cp = 1; cp <= stage; ++cp) {
        if (stage % (tp * cp) != 0)
          continue;
        for (std::int64_t etp = 1; etp <= stage; ++etp) {
          for (std::int64_t ep = 1; ep <= stage; ++ep) {
            if (stage % (etp * ep) != 0)
              continue;
            if (!folding && (etp != tp || (stage / (tp * cp)) % ep != 0))
              continue;
            configs.push_back(make_parallel_config(
                world, {.tp = tp, .cp = cp, .pp = pp, .vpp = 1, .ep = ep, .etp = etp}, folding));
          }
        }
      }
    }
  }
  return configs;
}

std::vector<std::string> varying_dimensions(const std::string& family) {
  if (family == "mp")
    return {"tp", "pp"};
  std::vector<std::string> dimensions;
  std::size_t start = 0;
  while (true) {
    const std::size_t dash = family.find('-', start);
    dimensions.push_back(family.substr(start, dash - start));
    if (dash == std::string::npos)
      return dimensions;
    start = dash + 1;
  }
}

std::map<std::string, std::int64_t> named_coordinates(const RankCoordinates& c, bool attention) {
  if (attention) {
    return {{"tp", c.attention.tp},
            {"cp", c.attention.cp},
            {"dp", c.attention.dp},
            {"pp", c.attention.pp}};
  }
  return {{"etp", c.moe.etp}, {"ep", c.moe.ep}, {"edp", c.moe.edp}, {"pp", c.moe.pp}};
}

std::map<std::string, std::int64_t> named_sizes(const ParallelConfig& c, bool attention) {
  if (attention)
    return {{"tp", c.tp}, {"cp", c.cp}, {"dp", c.dp}, {"pp", c.pp}};
  return {{"etp", c.etp}, {"ep", c.ep}, {"edp", c.edp}, {"pp", c.pp}};
}

// Each family partitions the world into ascending groups of the product of its sizes, and the
// members of a group agree on every coordinate outside the family's dimensions.
void expect_families_partition_the_world(const ParallelConfig& config,
                                         const std::vector<NamedRankGroups>& families,
                                         bool attention) {
  const std::int64_t world = config.world_size();
  const auto sizes = named_sizes(config, attention);
  for (const NamedRankGroups& family : families) {
    const std::vector<std::string> varying = varying_dimensions(family.name);
    std::int64_t group_size = 1;
    for (const std::string& dimension : varying)
      group_size *= sizes.at(dimension);
    std::vector<int> seen(static_cast<std::size_t>(world), 0);
    for (const RankGroup& group : family.groups) {
      ASSERT_EQ(static_cast<std::int64_t>(group.size()), group_size) << family.name;
      EXPECT_TRUE(std::is_sorted(group.begin(), group.end())) << family.name;
      auto fixed = named_coordinates(coordinates_of_rank(config, group.front()), attention);
      for (const std::string& dimension : varying)
        fixed.erase(dimension);
      for (const std::int64_t rank : group) {
        ASSERT_GE(rank, 0);
        ASSERT_LT(rank, world);
        ++seen[static_cast<std::size_t>(rank)];
        auto coordinates = named_coordinates(coordinates_of_rank(config, rank), attention);
        for (const std::string& dimension : varying)
          coordinates.erase(dimension);
        EXPECT_EQ(coordinates, fixed) << family.name << " rank " << rank;
      }
    }
    for (std::int64_t rank = 0; rank < world; ++rank) {
      EXPECT_EQ(seen[static_cast<std::size_t>(rank)], 1) << family.name << " rank " << rank;
    }
  }
}

// Reference §1.2 closed forms, written out independently of the generator.
void expect_rank_formulas(const ParallelConfig& c) {
  for (std::int64_t pp = 0; pp < c.pp; ++pp) {
    for (std::int64_t dp = 0; dp < c.dp; ++dp) {
      for (std::int64_t cp = 0; cp < c.cp; ++cp) {
        for (std::int64_t tp = 0; tp < c.tp; ++tp) {
          const std::int64_t rank = tp + c.tp * (cp + c.cp * (dp + c.dp * pp));
          EXPECT_EQ(coordinates_of_rank(c, rank).attention, (AttentionCoordinates{tp, cp, dp, pp}));
        }
      }
    }
    for (std::int64_t edp = 0; edp < c.edp; ++edp) {
      for (std::int64_t ep = 0; ep < c.ep; ++ep) {
        for (std::int64_t etp = 0; etp < c.etp; ++etp) {
          const std::int64_t rank = etp + c.etp * (ep + c.ep * (edp + c.edp * pp));
          EXPECT_EQ(coordinates_of_rank(c, rank).moe, (MoeCoordinates{etp, ep, edp, pp}));
        }
      }
    }
  }
}

TEST(RankGroups, InvariantsHoldForEveryFactorisation) {
  int checked = 0;
  for (const std::int64_t world : {1, 6, 8, 12, 16, 24}) {
    for (const ParallelConfig& config : every_config(world, /*folding=*/true)) {
      SCOPED_TRACE(parallel_to_json(config).dump());
      const RankGroups groups = all_rank_groups(config);
      expect_families_partition_the_world(config, groups.attention, true);
      expect_families_partition_the_world(config, groups.moe, false);
      EXPECT_EQ(groups_named(groups.attention, "pp"), groups_named(groups.moe, "pp"));
      expect_rank_formulas(config);
      ++checked;
      if (::testing::Test::HasFailure())
        return;
    }
  }
  EXPECT_GT(checked, 500);
}

TEST(RankGroups, FamilyNamesAreTheDocumentedOnes) {
  const RankGroups groups = all_rank_groups(worked_example());
  std::vector<std::string> attention, moe;
  for (const auto& family : groups.attention)
    attention.push_back(family.name);
  for (const auto& family : groups.moe)
    moe.push_back(family.name);
  EXPECT_EQ(attention, (std::vector<std::string>{"tp", "cp", "dp", "pp", "tp-cp", "dp-cp",
                                                 "tp-cp-dp", "tp-dp", "mp"}));
  EXPECT_EQ(moe, (std::vector<std::string>{"etp", "ep", "edp", "etp-ep", "pp", "etp-ep-pp"}));
}

// Without folding and without CP, every EP group (and every expert-data group) lies inside one
// attention DP group, as in pre-folding Megatron.
TEST(RankGroups, WithoutFoldingExpertGroupsNestInDataParallelGroups) {
  int checked = 0;
  for (const std::int64_t world : {8, 16, 24}) {
    for (const ParallelConfig& config : every_config(world, /*folding=*/false)) {
      if (config.cp != 1)
        continue;
      SCOPED_TRACE(parallel_to_json(config).dump());
      const RankGroups groups = all_rank_groups(config);
      const Groups& dp = groups_named(groups.attention, "dp");
      for (const char* family : {"ep", "edp"}) {
        for (const RankGroup& group : groups_named(groups.moe, family)) {
          const bool nested = std::any_of(dp.begin(), dp.end(), [&](const RankGroup& d) {
            return std::includes(d.begin(), d.end(), group.begin(), group.end());
          });
          EXPECT_TRUE(nested) << family;
        }
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
}

} // namespace
} // namespace foldplan
