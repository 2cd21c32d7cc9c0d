// The vocabulary of a cluster's topology graph: devices (GPUs, NVSwitches, NICs, leaf and spine
// switches) as vertices, links as edges carrying their per-direction bandwidth and latency.
// Cluster (cluster.hpp) builds one; this file only says what its parts are and how to walk it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

namespace foldplan {

enum class DeviceKind { gpu, nvswitch, nic, leaf_switch, spine_switch };

struct Device {
  DeviceKind kind = DeviceKind::gpu;
  // Position among the devices of its kind: the GPU id (which is the rank placed on it), the
  // NVLink domain of an NVSwitch, node·nics_per_node + rail for a NIC,
  // leaf_group·nics_per_node + rail for a leaf switch, 0 for the (one, logical) spine.
  std::int64_t index = 0;
};

enum class LinkKind {
  nvlink, // GPU – NVSwitch of its NVLink domain
  host,   // GPU – NIC (PCIe; sized to the NIC, so it never limits more than the NIC does)
  rail,   // NIC – the leaf switch of its rail
  uplink, // leaf switch – spine
};

struct Link {
  LinkKind kind = LinkKind::nvlink;
  double bw_Bps = 0; // per direction; links are full duplex
  double latency_s = 0;
  // How many GPUs' traffic shares this link when every GPU sends across it at once (Megatron runs
  // all groups of one kind together): a GPU spreading its traffic over k NICs counts 1/k on each.
  // The bandwidth one GPU can count on here is bw_Bps / gpus_sharing.
  double gpus_sharing = 1;
};

using TopologyGraph =
    boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS, Device, Link>;
using DeviceId = TopologyGraph::vertex_descriptor;
using LinkId = TopologyGraph::edge_descriptor;

// The links of a shortest path (fewest links) from `from` to `to` that uses only links of the
// `allowed` kinds, in order from `from`; nullopt when there is none. Breadth-first search.
std::optional<std::vector<LinkId>> shortest_path(const TopologyGraph& graph, DeviceId from,
                                                 DeviceId to,
                                                 std::initializer_list<LinkKind> allowed);

} // namespace foldplan
