#include "simulator/rank_folding.hpp"

#include <algorithm>
#include <functional>
#include <variant>

namespace foldplan {
namespace {

// Whether any program sends or receives over family `group_id`.
bool carries_transfers(const StepProgram& program, int group_id) {
  for (const RankProgram& rank_program : program.programs) {
    for (const Op& op : rank_program.ops) {
      const auto* transfer = std::get_if<PeerTransfer>(&op.shape);
      if (transfer != nullptr && transfer->group_id == group_id)
        return true;
    }
  }
  return false;
}

// Whether some all-to-all-v over family `group_id` sends unequal splits: then a rank's own split,
// which stays local, depends on its position, and ranks of one class at different positions of a
// group would not take equally long.
bool has_uneven_splits(const StepProgram& program, int group_id) {
  for (const RankProgram& rank_program : program.programs) {
    for (const Op& op : rank_program.ops) {
      const auto* collective = std::get_if<CollectiveShape>(&op.shape);
      if (collective == nullptr || collective->group_id != group_id)
        continue;
      const auto& splits = collective->send_bytes_per_peer;
      if (std::adjacent_find(splits.begin(), splits.end(), std::not_equal_to<>()) != splits.end())
        return true;
    }
  }
  return false;
}

} // namespace

std::optional<FoldedProgram> fold_interchangeable_ranks(const StepProgram& program) {
  FoldedProgram folded;
  const auto world = static_cast<std::size_t>(program.world_size);
  folded.class_of_rank.assign(world, -1);
  folded.representative.resize(program.programs.size());
  for (std::size_t c = 0; c < program.programs.size(); ++c) {
    const auto& ranks = program.programs[c].ranks;
    folded.representative[c] = *std::min_element(ranks.begin(), ranks.end());
    for (const std::int64_t rank : ranks)
      folded.class_of_rank[static_cast<std::size_t>(rank)] = static_cast<std::int32_t>(c);
  }

  folded.program.schema = program.schema;
  folded.program.world_size = static_cast<std::int64_t>(program.programs.size());
  folded.program.metadata = program.metadata;
  const auto classes = program.programs.size();
  for (const CommGroup& family : program.groups) {
    CommGroup reduced{.id = family.id, .name = family.name, .members = {}};
    // The classes of each kind of group by position, and which kind each class belongs to.
    std::vector<std::vector<std::int64_t>> kinds;
    std::vector<std::int64_t> kind_of_class(classes, -1);
    for (const auto& members : family.members) {
      std::vector<std::int64_t> pattern;
      pattern.reserve(members.size());
      for (const std::int64_t rank : members)
        pattern.push_back(folded.class_of_rank[static_cast<std::size_t>(rank)]);
      const auto known = std::find(kinds.begin(), kinds.end(), pattern);
      const auto kind = known - kinds.begin();
      if (known == kinds.end())
        kinds.push_back(pattern);
      for (const std::int64_t c : pattern) {
        std::int64_t& seen = kind_of_class[static_cast<std::size_t>(c)];
        if (seen >= 0 && seen != kind)
          return std::nullopt; // ranks of one class in groups of different make-up
        seen = kind;
      }
    }
    for (std::vector<std::int64_t>& pattern : kinds) {
      std::vector<std::int64_t> distinct = pattern;
      std::sort(distinct.begin(), distinct.end());
      distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
      if (distinct.size() == pattern.size()) {
        reduced.members.push_back(std::move(pattern));
        continue;
      }
      // Positions matter to sends and receives (a class twice in such a group is two ranks apart
      // in time) and to uneven all-to-all-v splits. A collective waits for every member, so
      // otherwise one representative per class will do.
      if (carries_transfers(program, family.id) || has_uneven_splits(program, family.id))
        return std::nullopt;
      reduced.members.push_back(std::move(distinct));
    }
    folded.program.groups.push_back(std::move(reduced));
  }
  for (std::size_t c = 0; c < program.programs.size(); ++c) {
    folded.program.programs.push_back(
        RankProgram{.ranks = {static_cast<std::int64_t>(c)}, .ops = {}});
  }
  return folded;
}

} // namespace foldplan
