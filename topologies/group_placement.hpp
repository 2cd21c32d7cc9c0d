// Where one communication group's ranks sit on a Cluster, and which levels of the topology its
// collectives cross with what per-GPU bandwidth and latency. The cost model asks this for every
// group of every candidate plan, so it is answered arithmetically from the ranks' node, domain
// and leaf-group indices and the level figures the Cluster read off its graph once.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "topologies/cluster.hpp"

namespace foldplan {

struct GroupPlacement {
  std::int64_t num_ranks = 0;
  std::int64_t num_nodes = 0;
  std::int64_t num_domains = 0;     // NVLink domains
  std::int64_t num_leaf_groups = 0; // leaf groups of the fat tree
  std::int64_t max_ranks_per_node = 0;
  bool uniform = true; // every node the group touches holds the same number of its ranks
  std::int64_t max_ranks_per_domain = 0;
  // Innermost first: "nvlink" when some domain holds two or more of the ranks; "network" when the
  // group spans domains; "spine" when it also spans leaf groups. Empty for a group of one.
  std::vector<LinkLevel> levels;

  bool within_one_nvlink_domain() const { return num_domains == 1; }
  // The level named `name`, or nullptr when the group's traffic does not cross it.
  const LinkLevel* find_level(std::string_view name) const;
};

// `ranks` in any order. A rank outside [0, cluster.num_gpus()), a repeated rank or an empty
// group is a caller's bug: std::invalid_argument.
GroupPlacement place_group(const Cluster& cluster, std::span<const std::int64_t> ranks);

} // namespace foldplan
