#include "topologies/group_placement.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

namespace foldplan {
namespace {

// Counts the runs of equal keys in a non-decreasing sequence and the longest and shortest run.
class RunCounter {
public:
  void add(std::int64_t key) {
    if (count_ > 0 && key == key_) {
      ++length_;
      return;
    }
    close_run();
    key_ = key;
    length_ = 1;
    ++count_;
  }
  void close_run() {
    if (length_ == 0)
      return;
    longest_ = std::max(longest_, length_);
    shortest_ = std::min(shortest_, length_);
    length_ = 0;
  }
  std::int64_t count() const { return count_; }
  std::int64_t longest() const { return longest_; }
  std::int64_t shortest() const { return count_ > 0 ? shortest_ : 0; }

private:
  std::int64_t key_ = 0;
  std::int64_t length_ = 0;
  std::int64_t count_ = 0;
  std::int64_t longest_ = 0;
  std::int64_t shortest_ = std::numeric_limits<std::int64_t>::max();
};

} // namespace

const LinkLevel* GroupPlacement::find_level(std::string_view name) const {
  for (const LinkLevel& level : levels) {
    if (level.name == name)
      return &level;
  }
  return nullptr;
}

GroupPlacement place_group(const Cluster& cluster, std::span<const std::int64_t> ranks) {
  if (ranks.empty())
    throw std::invalid_argument("place_group: the group has no ranks");
  // Megatron's groups come sorted; anything else is sorted on a copy.
  std::vector<std::int64_t> sorted_copy;
  std::span<const std::int64_t> sorted = ranks;
  if (!std::is_sorted(ranks.begin(), ranks.end())) {
    sorted_copy.assign(ranks.begin(), ranks.end());
    std::sort(sorted_copy.begin(), sorted_copy.end());
    sorted = sorted_copy;
  }
  if (sorted.front() < 0 || sorted.back() >= cluster.num_gpus()) {
    const std::int64_t bad = sorted.front() < 0 ? sorted.front() : sorted.back();
    throw std::invalid_argument(fmt::format("place_group: rank {} is not in a cluster of {} GPUs",
                                            bad, cluster.num_gpus()));
  }

  // Sorted ranks give non-decreasing node, domain and leaf-group indices, so one pass counts them.
  RunCounter nodes;
  RunCounter domains;
  RunCounter leaf_groups;
  std::int64_t previous_rank = -1;
  for (const std::int64_t rank : sorted) {
    if (rank == previous_rank) {
      throw std::invalid_argument(fmt::format("place_group: rank {} appears twice", rank));
    }
    previous_rank = rank;
    nodes.add(cluster.node_of(rank));
    domains.add(cluster.nvlink_domain_of(rank));
    leaf_groups.add(cluster.leaf_group_of(rank));
  }
  nodes.close_run();
  domains.close_run();
  leaf_groups.close_run();

  GroupPlacement placement;
  placement.num_ranks = static_cast<std::int64_t>(sorted.size());
  placement.num_nodes = nodes.count();
  placement.num_domains = domains.count();
  placement.num_leaf_groups = leaf_groups.count();
  placement.max_ranks_per_node = nodes.longest();
  placement.uniform = nodes.shortest() == nodes.longest();
  placement.max_ranks_per_domain = domains.longest();

  // Levels whose figures the cluster lacks cannot be needed: two ranks in one domain imply an
  // nvlink level, two leaf groups imply a spine.
  if (placement.max_ranks_per_domain >= 2)
    placement.levels.push_back(*cluster.nvlink_level());
  if (placement.num_domains >= 2) {
    placement.levels.push_back(cluster.network_level());
    if (placement.num_leaf_groups >= 2)
      placement.levels.push_back(*cluster.spine_level());
  }
  return placement;
}

} // namespace foldplan
