#include "topologies/cluster.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "core/errors.hpp"

namespace foldplan {
namespace {

std::int64_t ceil_div(std::int64_t numerator, std::int64_t denominator) {
  return (numerator + denominator - 1) / denominator;
}

// The end of `link` that is of `kind` (each kind of link joins two different kinds of device).
DeviceId end_of_kind(const TopologyGraph& graph, const LinkId& link, DeviceKind kind) {
  const DeviceId source = boost::source(link, graph);
  return graph[source].kind == kind ? source : boost::target(link, graph);
}

std::int64_t count_links(const TopologyGraph& graph, DeviceId device, LinkKind kind) {
  std::int64_t count = 0;
  for (const LinkId& link : boost::make_iterator_range(boost::out_edges(device, graph))) {
    if (graph[link].kind == kind)
      ++count;
  }
  return count;
}

// Sum of gpus_sharing over the links of `kind` at `device`.
double sharing_behind(const TopologyGraph& graph, DeviceId device, LinkKind kind) {
  double sharing = 0;
  for (const LinkId& link : boost::make_iterator_range(boost::out_edges(device, graph))) {
    if (graph[link].kind == kind)
      sharing += graph[link].gpus_sharing;
  }
  return sharing;
}

} // namespace

Cluster::Cluster(ClusterSpec spec, std::int64_t num_gpus, const std::string& gpus_field)
    : spec_(std::move(spec)), num_gpus_(num_gpus) {
  validate_cluster(spec_, "cluster");
  const std::int64_t gpus_per_node = spec_.gpus_per_node;
  if (num_gpus <= 0) {
    throw InputError(gpus_field, fmt::format("{} is not a positive integer", num_gpus));
  }
  if (num_gpus > kMaxClusterGpus) {
    throw InputError(gpus_field, fmt::format("{} is more GPUs than foldplan models (at most {})",
                                             num_gpus, kMaxClusterGpus));
  }
  if (num_gpus > gpus_per_node && num_gpus % gpus_per_node != 0) {
    throw InputError(gpus_field,
                     fmt::format("{} is not a multiple of gpus_per_node {} of cluster {} (use "
                                 "whole nodes, or fewer than {} GPUs for one partial node)",
                                 num_gpus, gpus_per_node, spec_.name, gpus_per_node));
  }
  num_nodes_ = ceil_div(num_gpus_, gpus_per_node);
  num_domains_ = ceil_div(num_gpus_, spec_.nvlink_domain_gpus);
  num_leaf_groups_ = ceil_div(num_nodes_, spec_.nodes_per_leaf);

  build_graph();
  count_link_sharing();

  if (std::min(num_gpus_, spec_.nvlink_domain_gpus) >= 2) {
    nvlink_level_ = level_on_the_way_up(kNvlinkLevel, nvswitch_of_domain_[0], {LinkKind::nvlink});
  }
  // NIC 0 of node 0 belongs to GPU 0 and to rail 0, whatever the GPU:NIC ratio.
  network_level_ =
      level_on_the_way_up(kNetworkLevel, *leaf_switch_[0], {LinkKind::host, LinkKind::rail});
  if (spine_) {
    spine_level_ = level_on_the_way_up(kSpineLevel, *spine_,
                                       {LinkKind::host, LinkKind::rail, LinkKind::uplink});
  }
}

void Cluster::build_graph() {
  const std::int64_t gpus_per_node = spec_.gpus_per_node;
  const std::int64_t nics_per_node = spec_.nics_per_node;

  // GPUs first, so that GPU g is vertex g (gpu_device relies on it).
  for (std::int64_t gpu = 0; gpu < num_gpus_; ++gpu) {
    boost::add_vertex(Device{DeviceKind::gpu, gpu}, graph_);
  }

  // One logical NVSwitch per domain: NVSwitch fabrics are non-blocking, so each GPU's own NVLink
  // bandwidth is all that limits it. Each link carries half the GPU-to-GPU latency, so that a
  // path's latency is the sum over its links.
  for (std::int64_t domain = 0; domain < num_domains_; ++domain) {
    nvswitch_of_domain_.push_back(boost::add_vertex(Device{DeviceKind::nvswitch, domain}, graph_));
  }
  const Link nvlink{LinkKind::nvlink, spec_.nvlink_bw_Bps, spec_.nvlink_latency_s / 2};
  for (std::int64_t gpu = 0; gpu < num_gpus_; ++gpu) {
    boost::add_edge(gpu_device(gpu), nvswitch_of_domain_[nvlink_domain_of(gpu)], nvlink, graph_);
  }

  // Rail-optimized fabric: NIC r of every node is on rail r, whose leaf switch in each leaf group
  // serves that group's nodes. network_latency_s is end to end (GPU, NIC, leaf, NIC, GPU), so it
  // is split over the two NIC–leaf links; the host (PCIe) links add none of their own.
  leaf_switch_.assign(static_cast<std::size_t>(num_leaf_groups_ * nics_per_node), std::nullopt);
  const Link host{LinkKind::host, spec_.nic_bw_Bps, 0};
  const Link rail{LinkKind::rail, spec_.nic_bw_Bps, spec_.network_latency_s / 2};
  for (std::int64_t node = 0; node < num_nodes_; ++node) {
    const std::int64_t first_gpu = node * gpus_per_node;
    const std::int64_t gpus_on_node = std::min(gpus_per_node, num_gpus_ - first_gpu);
    for (std::int64_t nic_on_node = 0; nic_on_node < nics_per_node; ++nic_on_node) {
      // NICs are shared evenly (validated): several NICs per GPU, or several GPUs per NIC.
      const std::int64_t first_local_gpu = nics_per_node >= gpus_per_node
                                               ? nic_on_node / (nics_per_node / gpus_per_node)
                                               : nic_on_node * (gpus_per_node / nics_per_node);
      const std::int64_t local_gpus_on_nic =
          std::max<std::int64_t>(1, gpus_per_node / nics_per_node);
      // A partial node has only its own GPUs' NICs.
      if (first_local_gpu >= gpus_on_node)
        continue;

      const DeviceId nic =
          boost::add_vertex(Device{DeviceKind::nic, node * nics_per_node + nic_on_node}, graph_);
      for (std::int64_t local = first_local_gpu;
           local < std::min(first_local_gpu + local_gpus_on_nic, gpus_on_node); ++local) {
        boost::add_edge(gpu_device(first_gpu + local), nic, host, graph_);
      }
      const std::int64_t leaf_index = (node / spec_.nodes_per_leaf) * nics_per_node + nic_on_node;
      std::optional<DeviceId>& leaf = leaf_switch_[static_cast<std::size_t>(leaf_index)];
      if (!leaf) {
        leaf = boost::add_vertex(Device{DeviceKind::leaf_switch, leaf_index}, graph_);
      }
      boost::add_edge(nic, *leaf, rail, graph_);
    }
  }

  // Leaf groups meet at one logical spine. A leaf has one port down per node of its group; its
  // uplinks carry that over the oversubscription. Traffic between rails inside a leaf group
  // takes NCCL's PXN route (over NVLink to the GPU on the destination's rail), so only traffic
  // between leaf groups climbs here. The extra switch hops are sub-microsecond and counted in
  // network_latency_s.
  if (num_leaf_groups_ > 1) {
    spine_ = boost::add_vertex(Device{DeviceKind::spine_switch, 0}, graph_);
    const double uplink_bw_Bps =
        static_cast<double>(spec_.nodes_per_leaf) * spec_.nic_bw_Bps / spec_.oversubscription;
    for (const std::optional<DeviceId>& leaf : leaf_switch_) {
      if (leaf)
        boost::add_edge(*leaf, *spine_, Link{LinkKind::uplink, uplink_bw_Bps, 0}, graph_);
    }
  }
}

void Cluster::count_link_sharing() {
  // Every GPU sends at the same rate and spreads it evenly over its NICs; each link then carries
  // the shares of the GPUs behind it. Innermost links first: each kind sums the one below it.
  for (const LinkId& link : boost::make_iterator_range(boost::edges(graph_))) {
    if (graph_[link].kind != LinkKind::host)
      continue;
    const DeviceId gpu = end_of_kind(graph_, link, DeviceKind::gpu);
    graph_[link].gpus_sharing = 1.0 / static_cast<double>(count_links(graph_, gpu, LinkKind::host));
  }
  for (const LinkId& link : boost::make_iterator_range(boost::edges(graph_))) {
    if (graph_[link].kind != LinkKind::rail)
      continue;
    const DeviceId nic = end_of_kind(graph_, link, DeviceKind::nic);
    graph_[link].gpus_sharing = sharing_behind(graph_, nic, LinkKind::host);
  }
  for (const LinkId& link : boost::make_iterator_range(boost::edges(graph_))) {
    if (graph_[link].kind != LinkKind::uplink)
      continue;
    const DeviceId leaf = end_of_kind(graph_, link, DeviceKind::leaf_switch);
    graph_[link].gpus_sharing = sharing_behind(graph_, leaf, LinkKind::rail);
  }
}

LinkLevel Cluster::level_on_the_way_up(std::string_view name, DeviceId turnaround,
                                       std::initializer_list<LinkKind> allowed) const {
  const std::optional<std::vector<LinkId>> path =
      shortest_path(graph_, gpu_device(0), turnaround, allowed);
  if (!path || path->empty()) {
    throw std::logic_error(fmt::format("Cluster: no {} path from GPU 0", name));
  }
  double bw_Bps = std::numeric_limits<double>::infinity();
  double latency_s = 0;
  for (const LinkId& link : *path) {
    const Link& properties = graph_[link];
    bw_Bps = std::min(bw_Bps, properties.bw_Bps / properties.gpus_sharing);
    latency_s += properties.latency_s;
  }
  // The way down to the receiving GPU mirrors the way up (a fat tree is symmetric), and GPU 0's
  // leaf group is a full one whenever there are several, so the bottleneck lies on this half.
  return LinkLevel{std::string(name), bw_Bps, 2 * latency_s};
}

} // namespace foldplan
