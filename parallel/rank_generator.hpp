// The one generator of rank groups: ranks laid out as a mixed-radix number over ordered, named
// dimensions, and a group as all ranks that differ only in the chosen dimensions — Megatron's
// parallel_state.generate_masked_orthogonal_rank_groups, as RankGenerator.get_ranks calls it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace foldplan {

struct RankDimension {
  std::string name; // "tp", "cp", "ep", "dp", "pp" …
  std::int64_t size = 1;

  bool operator==(const RankDimension&) const = default;
};

// Dimensions in order, the first the fastest-varying (stride 1, adjacent ranks): Megatron's
// order string "tp-cp-ep-dp-pp" is {tp, cp, ep, dp, pp}. Names are unique.
using RankLayout = std::vector<RankDimension>;

// The ranks of one group, in ascending order.
using RankGroup = std::vector<std::int64_t>;

std::int64_t layout_world_size(const RankLayout& layout);

// Every group of ranks that differ only in the dimensions named in `varying` (their order does
// not matter), in Megatron's order: groups by the other dimensions' mixed-radix index, ranks within
// a group by the varying dimensions' index. Each group has the product of the varying sizes as its
// size; together the groups partition the world. Throws std::invalid_argument for a name not in
// the layout (a programming error).
std::vector<RankGroup> generate_rank_groups(const RankLayout& layout,
                                            const std::vector<std::string>& varying);

// The one group of `generate_rank_groups(layout, varying)` that holds `rank`, without building
// the others (the cost model asks this for every candidate plan).
RankGroup group_holding_rank(const RankLayout& layout, const std::vector<std::string>& varying,
                             std::int64_t rank);

// The coordinate of `rank` along each dimension of `layout`, in layout order.
std::vector<std::int64_t> rank_coordinates(const RankLayout& layout, std::int64_t rank);
// The rank with these coordinates, one per dimension: Σ coordinate[i] · Π_{j<i} size[j].
std::int64_t rank_at(const RankLayout& layout, const std::vector<std::int64_t>& coordinates);

} // namespace foldplan
