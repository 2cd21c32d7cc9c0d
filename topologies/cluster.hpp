// Cluster: a ClusterSpec instantiated for N GPUs — its topology graph (GPUs, one logical NVSwitch
// per NVLink domain, NICs, rail leaf switches, a spine) and the per-GPU figures of each level a
// collective can cross, read off that graph once so that group queries are arithmetic.
//
// Placement is Megatron's: rank r runs on GPU r, GPU r sits on node r / gpus_per_node.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "topologies/cluster_spec.hpp"
#include "topologies/topology_graph.hpp"

namespace foldplan {

// The levels a collective's traffic can cross, innermost first.
inline constexpr std::string_view kNvlinkLevel = "nvlink";   // inside an NVLink domain
inline constexpr std::string_view kNetworkLevel = "network"; // between domains, through NICs
inline constexpr std::string_view kSpineLevel = "spine";     // between leaf groups

// What one GPU can count on at one level when every GPU crosses that level at once.
struct LinkLevel {
  std::string name;     // kNvlinkLevel, kNetworkLevel or kSpineLevel
  double bw_Bps = 0;    // per GPU, per direction: the bottleneck link's bandwidth over its sharers
  double latency_s = 0; // one transfer GPU to GPU across the level

  bool operator==(const LinkLevel&) const = default;
};

// The largest --gpus foldplan builds a graph for (a few hundred MB of graph at most).
inline constexpr std::int64_t kMaxClusterGpus = std::int64_t{1} << 18;

class Cluster {
public:
  // N must be a whole number of nodes, or fewer GPUs than one node holds (a single partial node).
  // Throws InputError naming `gpus_field` when it is not, and for an invalid spec.
  Cluster(ClusterSpec spec, std::int64_t num_gpus, const std::string& gpus_field = "--gpus");

  const ClusterSpec& spec() const { return spec_; }
  std::int64_t num_gpus() const { return num_gpus_; }
  std::int64_t num_nodes() const { return num_nodes_; }
  std::int64_t num_nvlink_domains() const { return num_domains_; }
  // Groups of nodes_per_leaf consecutive nodes whose NICs share leaf switches (one per rail).
  std::int64_t num_leaf_groups() const { return num_leaf_groups_; }

  // Where rank r runs. Callers pass ranks in [0, num_gpus).
  std::int64_t node_of(std::int64_t rank) const { return rank / spec_.gpus_per_node; }
  std::int64_t nvlink_domain_of(std::int64_t rank) const { return rank / spec_.nvlink_domain_gpus; }
  std::int64_t leaf_group_of(std::int64_t rank) const {
    return node_of(rank) / spec_.nodes_per_leaf;
  }

  const TopologyGraph& graph() const { return graph_; }
  DeviceId gpu_device(std::int64_t gpu) const { return static_cast<DeviceId>(gpu); }

  // Per-GPU figures of each level; nullopt where this cluster has no such level (no domain holds
  // two GPUs: no nvlink; a single leaf group: no spine). The network level always exists.
  const std::optional<LinkLevel>& nvlink_level() const { return nvlink_level_; }
  const LinkLevel& network_level() const { return network_level_; }
  const std::optional<LinkLevel>& spine_level() const { return spine_level_; }

private:
  void build_graph();
  void count_link_sharing();
  LinkLevel level_on_the_way_up(std::string_view name, DeviceId turnaround,
                                std::initializer_list<LinkKind> allowed) const;

  ClusterSpec spec_;
  std::int64_t num_gpus_ = 0;
  std::int64_t num_nodes_ = 0;
  std::int64_t num_domains_ = 0;
  std::int64_t num_leaf_groups_ = 0;
  TopologyGraph graph_;
  std::vector<DeviceId> nvswitch_of_domain_;
  std::vector<std::optional<DeviceId>> leaf_switch_; // by leaf_group·nics_per_node + rail
  std::optional<DeviceId> spine_;
  std::optional<LinkLevel> nvlink_level_;
  LinkLevel network_level_;
  std::optional<LinkLevel> spine_level_;
};

} // namespace foldplan
