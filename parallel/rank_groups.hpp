// The process groups of a parallel configuration exactly as Megatron-Core's parallel_state builds
// them with the default order "tp-cp-ep-dp-pp": attention groups from the decoder generator
// (TP, CP, DP, PP; EP = 1) and MoE groups from the expert generator (ETP, EP, EDP, PP; CP = 1).
// Each family is a list of groups that partitions the world, kept in a fixed order for printing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "parallel/parallel_config.hpp"
#include "parallel/rank_generator.hpp"

namespace foldplan {

// One family of groups: "dp" and every data-parallel group of the world.
struct NamedRankGroups {
  std::string name;
  std::vector<RankGroup> groups;

  bool operator==(const NamedRankGroups&) const = default;
};

struct RankGroups {
  // tp, cp, dp, pp, tp-cp, dp-cp, tp-cp-dp, tp-dp, mp (= tp-pp, Megatron's model-parallel group).
  std::vector<NamedRankGroups> attention;
  // etp, ep, edp, etp-ep, pp, etp-ep-pp.
  std::vector<NamedRankGroups> moe;

  bool operator==(const RankGroups&) const = default;
};

// Megatron initialize_model_parallel's decoder_rank_generator layout: {tp, cp, ep = 1, dp, pp}.
RankLayout attention_rank_layout(const ParallelConfig& config);
// Megatron's expert_decoder_rank_generator layout: {etp, cp = 1, ep, edp, pp}. Without folding
// (pre-folding Megatron's single generator) EP is carved out of DP after TP and CP:
// {tp, cp, ep, dp / ep, pp}, so an EP group spans TP·CP·EP consecutive ranks.
RankLayout moe_rank_layout(const ParallelConfig& config, bool folding = true);

// Every group of every family. `config` must have TP·CP·DP = ETP·EP·EDP (std::invalid_argument
// otherwise: validate the configuration first).
RankGroups all_rank_groups(const ParallelConfig& config, bool folding = true);

// The same families, each keeping only the one group that holds `rank`.
RankGroups groups_holding_rank(const RankGroups& groups, std::int64_t rank);

// The groups of the family called `name`; std::invalid_argument when there is none.
const std::vector<RankGroup>& groups_named(const std::vector<NamedRankGroups>& families,
                                           std::string_view name);

struct AttentionCoordinates {
  std::int64_t tp = 0, cp = 0, dp = 0, pp = 0;
  bool operator==(const AttentionCoordinates&) const = default;
};
struct MoeCoordinates {
  std::int64_t etp = 0, ep = 0, edp = 0, pp = 0;
  bool operator==(const MoeCoordinates&) const = default;
};
// Where one rank sits in both mappings: rank = tp + TP·(cp + CP·(dp + DP·pp))
//                                            = etp + ETP·(ep + EP·(edp + EDP·pp)).
struct RankCoordinates {
  AttentionCoordinates attention;
  MoeCoordinates moe;
  bool operator==(const RankCoordinates&) const = default;
};
RankCoordinates coordinates_of_rank(const ParallelConfig& config, std::int64_t rank,
                                    bool folding = true);

// {"attention": {"tp": [[0,1],…], …}, "moe": {"etp": …}} with families in the order above.
nlohmann::ordered_json rank_groups_to_json(const RankGroups& groups);
// {"attention": {"tp": …, "cp": …, "dp": …, "pp": …}, "moe": {"etp": …, "ep": …, "edp": …, "pp":
// …}}
nlohmann::ordered_json rank_coordinates_to_json(const RankCoordinates& coordinates);

} // namespace foldplan
