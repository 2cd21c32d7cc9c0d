// Megatron's two rank generators and the group families initialize_model_parallel creates from
// them, as data: a family is a name and the dimensions its groups vary over.
#include "parallel/rank_groups.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace foldplan {
namespace {

struct GroupFamily {
  const char* name;
  std::vector<std::string> varying;
};

// Megatron parallel_state.initialize_model_parallel, decoder_rank_generator.get_ranks(...):
// "dp-cp" (DATA_PARALLEL_GROUP_WITH_CP), "dp", "cp", "tp-pp" (MODEL_PARALLEL_GROUP), "tp", "pp",
// "tp-dp-cp", "tp-dp", "tp-cp".
const std::vector<GroupFamily>& attention_families() {
  static const std::vector<GroupFamily> families = {
      {"tp", {"tp"}},
      {"cp", {"cp"}},
      {"dp", {"dp"}},
      {"pp", {"pp"}},
      {"tp-cp", {"tp", "cp"}},
      {"dp-cp", {"dp", "cp"}},
      {"tp-cp-dp", {"tp", "cp", "dp"}},
      {"tp-dp", {"tp", "dp"}},
      {"mp", {"tp", "pp"}},
  };
  return families;
}

// Megatron parallel_state.initialize_model_parallel, expert_decoder_rank_generator.get_ranks(...):
// "tp" (EXPERT_TENSOR_PARALLEL_GROUP), "ep", "dp" (EXPERT_DATA_PARALLEL_GROUP), "tp-ep",
// "tp-ep-pp"; its "pp" groups are asserted equal to the decoder's.
const std::vector<GroupFamily>& moe_families() {
  static const std::vector<GroupFamily> families = {
      // Without folding the expert layout keeps CP between ETP and EP: the data-parallel
      // replicas of an expert span both.
      {"etp", {"etp"}},          {"ep", {"ep"}}, {"edp", {"cp", "edp"}},
      {"etp-ep", {"etp", "ep"}}, {"pp", {"pp"}}, {"etp-ep-pp", {"etp", "ep", "pp"}},
  };
  return families;
}

std::vector<NamedRankGroups> generate_families(const RankLayout& layout,
                                               const std::vector<GroupFamily>& families) {
  std::vector<NamedRankGroups> generated;
  generated.reserve(families.size());
  for (const GroupFamily& family : families) {
    generated.push_back({family.name, generate_rank_groups(layout, family.varying)});
  }
  return generated;
}

std::vector<NamedRankGroups> keep_groups_holding(const std::vector<NamedRankGroups>& families,
                                                 std::int64_t rank) {
  std::vector<NamedRankGroups> kept;
  kept.reserve(families.size());
  for (const NamedRankGroups& family : families) {
    NamedRankGroups holding{family.name, {}};
    for (const RankGroup& group : family.groups) {
      if (std::binary_search(group.begin(), group.end(), rank))
        holding.groups.push_back(group);
    }
    kept.push_back(std::move(holding));
  }
  return kept;
}

nlohmann::ordered_json families_to_json(const std::vector<NamedRankGroups>& families) {
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  for (const NamedRankGroups& family : families)
    json[family.name] = family.groups;
  return json;
}

} // namespace

RankLayout attention_rank_layout(const ParallelConfig& config) {
  return {{"tp", config.tp}, {"cp", config.cp}, {"ep", 1}, {"dp", config.dp}, {"pp", config.pp}};
}

RankLayout moe_rank_layout(const ParallelConfig& config, bool folding) {
  if (!folding) {
    // Pre-folding Megatron: one generator, EP carved out of DP after TP and CP.
    return {{"etp", config.tp},
            {"cp", config.cp},
            {"ep", config.ep},
            {"edp", config.dp / config.ep},
            {"pp", config.pp}};
  }
  return {
      {"etp", config.etp}, {"cp", 1}, {"ep", config.ep}, {"edp", config.edp}, {"pp", config.pp}};
}

RankGroups all_rank_groups(const ParallelConfig& config, bool folding) {
  const RankLayout attention = attention_rank_layout(config);
  const RankLayout moe = moe_rank_layout(config, folding);
  if (layout_world_size(attention) != layout_world_size(moe)) {
    throw std::invalid_argument(
        fmt::format("attention world TP·CP·DP·PP = {} differs from expert world ETP·EP·EDP·PP = {}",
                    layout_world_size(attention), layout_world_size(moe)));
  }
  return {generate_families(attention, attention_families()),
          generate_families(moe, moe_families())};
}

RankGroups groups_holding_rank(const RankGroups& groups, std::int64_t rank) {
  return {keep_groups_holding(groups.attention, rank), keep_groups_holding(groups.moe, rank)};
}

const std::vector<RankGroup>& groups_named(const std::vector<NamedRankGroups>& families,
                                           std::string_view name) {
  const auto found = std::find_if(families.begin(), families.end(),
                                  [&](const NamedRankGroups& f) { return f.name == name; });
  if (found == families.end()) {
    throw std::invalid_argument(fmt::format("no rank group family named \"{}\"", name));
  }
  return found->groups;
}

RankCoordinates coordinates_of_rank(const ParallelConfig& config, std::int64_t rank, bool folding) {
  const std::vector<std::int64_t> a = rank_coordinates(attention_rank_layout(config), rank);
  const RankLayout moe = moe_rank_layout(config, folding);
  const std::vector<std::int64_t> m = rank_coordinates(moe, rank);
  // Layout positions: attention {tp, cp, ep, dp, pp}, experts {etp, cp, ep, edp, pp}; the
  // expert data-parallel index runs over the layout's CP (1 with folding) and EDP digits.
  const std::int64_t edp = m[1] + moe[1].size * m[3];
  return {AttentionCoordinates{a[0], a[1], a[3], a[4]}, MoeCoordinates{m[0], m[2], edp, m[4]}};
}

nlohmann::ordered_json rank_groups_to_json(const RankGroups& groups) {
  nlohmann::ordered_json json;
  json["attention"] = families_to_json(groups.attention);
  json["moe"] = families_to_json(groups.moe);
  return json;
}

nlohmann::ordered_json rank_coordinates_to_json(const RankCoordinates& coordinates) {
  const AttentionCoordinates& a = coordinates.attention;
  const MoeCoordinates& m = coordinates.moe;
  nlohmann::ordered_json json;
  json["attention"] = {{"tp", a.tp}, {"cp", a.cp}, {"dp", a.dp}, {"pp", a.pp}};
  json["moe"] = {{"etp", m.etp}, {"ep", m.ep}, {"edp", m.edp}, {"pp", m.pp}};
  return json;
}

} // namespace foldplan
