#include "costmodel/collective_cost.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstdlib>
#include <map>
#include <utility>

namespace foldplan {
namespace {

constexpr const char* kCalibrationField = "calibration.collectives";

// ⌊log₂ n⌋ for n ≥ 1, as NCCL's log2i.
std::int64_t floor_log2(std::int64_t n) {
  return static_cast<std::int64_t>(std::bit_width(static_cast<std::uint64_t>(n))) - 1;
}

} // namespace

CollectiveCostModel::CollectiveCostModel(const Cluster& cluster,
                                         std::optional<GpuCalibration> calibration) {
  if (const std::optional<LinkLevel>& nvlink = cluster.nvlink_level()) {
    nvlink_ = Level{nvlink->bw_Bps * kNcclNvlinkEfficiency, nvlink->latency_s};
  }
  const LinkLevel& network = cluster.network_level();
  network_ = Level{network.bw_Bps * kNcclNetworkEfficiency, network.latency_s};
  if (const std::optional<LinkLevel>& spine = cluster.spine_level()) {
    spine_ = Level{spine->bw_Bps * kNcclNetworkEfficiency, spine->latency_s};
  }

  // A cluster without NVLink (one GPU per domain) never sends a byte over it.
  if (!calibration || !nvlink_)
    return;
  std::map<std::pair<CollectiveKind, std::int64_t>, std::vector<TimedMessage>> curves;
  for (const CollectiveMeasurement& measurement : calibration->collectives) {
    const std::optional<CollectiveKind> kind = collective_kind_named(measurement.kind);
    if (!kind || measurement.link != kNvlinkLevel)
      continue;
    curves[{*kind, measurement.gpus}].push_back({measurement.bytes, measurement.time_s});
  }
  for (const auto& [key, points] : curves) {
    const auto [kind, gpus] = key;
    std::optional<MeasuredBusBandwidth> curve = MeasuredBusBandwidth::from_points(
        kind, gpus, points, nvlink_->step_latency_s, kCalibrationField);
    if (curve)
      measured_[static_cast<std::size_t>(kind)].push_back(std::move(*curve));
  }
  // std::map iterates GPU counts in increasing order, so each kind's curves are sorted by gpus.
}

CollectiveCostModel::Span CollectiveCostModel::span_of(const GroupPlacement& group) {
  Span span;
  span.ranks = group.num_ranks;
  span.domains = std::max<std::int64_t>(1, group.num_domains);
  span.leaf_groups = std::max<std::int64_t>(1, group.num_leaf_groups);
  span.fullest_domain_ranks = std::max<std::int64_t>(1, group.max_ranks_per_domain);
  // The other D−1 domains hold at most k_max ranks each; exact for uniform groups.
  span.emptiest_domain_ranks =
      span.domains == 1
          ? span.ranks
          : std::max<std::int64_t>(1, span.ranks - (span.domains - 1) * span.fullest_domain_ranks);
  return span;
}

const MeasuredBusBandwidth* CollectiveCostModel::measured(CollectiveKind kind,
                                                          std::int64_t ranks) const {
  // The curve measured on the GPU count nearest the group's (ties: the larger).
  const MeasuredBusBandwidth* nearest = nullptr;
  for (const MeasuredBusBandwidth& curve : measured_[static_cast<std::size_t>(kind)]) {
    if (nearest == nullptr || std::abs(curve.gpus() - ranks) <= std::abs(nearest->gpus() - ranks)) {
      nearest = &curve;
    }
  }
  return nearest;
}

double CollectiveCostModel::call_overhead_s(CollectiveKind kind, std::int64_t ranks) const {
  const MeasuredBusBandwidth* curve = measured(kind, ranks);
  return curve ? curve->call_overhead_s() : 0.0;
}

double CollectiveCostModel::nvlink_bus_bw_Bps(CollectiveKind kind, std::int64_t ranks,
                                              double bytes) const {
  assert(nvlink_ && "the group's traffic crosses NVLink on a cluster that has none");
  // nccl-tests' premise: bus bandwidth does not depend on the number of ranks, so a curve
  // measured on 2 GPUs gives the bandwidth of a ring of 8 at the same message size.
  if (const MeasuredBusBandwidth* curve = measured(kind, ranks))
    return curve->bus_bw_Bps(bytes);
  return nvlink_->bus_bw_Bps;
}

double CollectiveCostModel::inter_domain_step_latency_s(const Span& span) const {
  return span.leaf_groups >= 2 && spine_ ? spine_->step_latency_s : network_.step_latency_s;
}

double CollectiveCostModel::inter_domain_bw_Bps(double spine_fraction) const {
  if (spine_fraction <= 0 || !spine_)
    return network_.bus_bw_Bps;
  return std::min(network_.bus_bw_Bps, spine_->bus_bw_Bps / spine_fraction);
}

double CollectiveCostModel::ring_time_s(CollectiveKind kind, const Span& span, double bytes) const {
  const std::int64_t n = span.ranks;
  // NCCL tuning.cc: nInterSteps = 2(nNodes−1) for all-reduce, nNodes−1 for all-gather and
  // reduce-scatter; the ring's other steps stay inside a domain.
  const std::int64_t inter_domain_steps =
      (kind == CollectiveKind::all_reduce ? 2 : 1) * (span.domains - 1);
  const std::int64_t intra_domain_steps = ring_steps(kind, n) - inter_domain_steps;
  double latency_s = call_overhead_s(kind, n) +
                     static_cast<double>(inter_domain_steps) * inter_domain_step_latency_s(span);
  if (intra_domain_steps > 0)
    latency_s += static_cast<double>(intra_domain_steps) * nvlink_->step_latency_s;

  double bus_bw_Bps = 0;
  if (span.domains == 1) {
    bus_bw_Bps = nvlink_bus_bw_Bps(kind, n, bytes);
  } else {
    // Derivation in the header: the domain's NIC shares carry factor·S between them; each GPU
    // sends (k−1)/k of its factor·S over NVLink.
    const double spine_fraction = span.leaf_groups >= 2 ? static_cast<double>(span.leaf_groups) /
                                                              static_cast<double>(span.domains)
                                                        : 0.0;
    bus_bw_Bps = static_cast<double>(span.emptiest_domain_ranks) *
                 inter_domain_bw_Bps(std::min(1.0, spine_fraction));
    const std::int64_t k = span.fullest_domain_ranks;
    if (k >= 2) {
      bus_bw_Bps = std::min(bus_bw_Bps, nvlink_bus_bw_Bps(kind, n, bytes) * static_cast<double>(k) /
                                            static_cast<double>(k - 1));
    }
  }
  return latency_s + bus_factor(kind, n) * bytes / bus_bw_Bps;
}

double CollectiveCostModel::tree_all_reduce_time_s(const Span& span, double bytes) const {
  const std::int64_t n = span.ranks;
  const std::int64_t k = span.fullest_domain_ranks;
  // NCCL tuning.cc, tree: 2·((nRanks/nNodes − 1)·intraLat + log2i(nNodes)·interLat).
  const double latency_s =
      call_overhead_s(CollectiveKind::all_reduce, n) +
      2 * (static_cast<double>(k - 1) * (k >= 2 ? nvlink_->step_latency_s : 0.0) +
           static_cast<double>(floor_log2(span.domains)) * inter_domain_step_latency_s(span));

  const double spine_fraction = span.leaf_groups >= 2 ? static_cast<double>(span.leaf_groups) /
                                                            static_cast<double>(span.domains)
                                                      : 0.0;
  double bus_bw_Bps = static_cast<double>(span.emptiest_domain_ranks) *
                      inter_domain_bw_Bps(std::min(1.0, spine_fraction));
  if (k >= 2) {
    bus_bw_Bps = std::min(bus_bw_Bps, nvlink_bus_bw_Bps(CollectiveKind::all_reduce, n, bytes) *
                                          static_cast<double>(k) / static_cast<double>(k - 1));
  }
  // NCCL tuning.cc: tree algorithm bandwidth = 0.5 × bus bandwidth, i.e. 2·S on every link.
  return latency_s + 2 * bytes / (kNcclTreeBandwidthFactor * bus_bw_Bps);
}

double CollectiveCostModel::send_recv_time_s(const Span& span, double bytes) const {
  const double overhead_s = call_overhead_s(CollectiveKind::send_recv, 2);
  if (span.domains == 1) {
    return overhead_s + nvlink_->step_latency_s +
           bytes / nvlink_bus_bw_Bps(CollectiveKind::send_recv, 2, bytes);
  }
  // Pipeline neighbours all send at once, so when they sit in different leaf groups every GPU's
  // transfer crosses the spine.
  return overhead_s + inter_domain_step_latency_s(span) +
         bytes / inter_domain_bw_Bps(span.leaf_groups >= 2 ? 1.0 : 0.0);
}

double CollectiveCostModel::time_s(CollectiveKind kind, const GroupPlacement& group,
                                   double bytes) const {
  assert(bytes >= 0);
  const Span span = span_of(group);
  if (span.ranks <= 1 || bytes <= 0)
    return 0;
  switch (kind) {
  case CollectiveKind::all_reduce: {
    const double ring_s = ring_time_s(kind, span, bytes);
    return span.domains >= 2 ? std::min(ring_s, tree_all_reduce_time_s(span, bytes)) : ring_s;
  }
  case CollectiveKind::all_gather:
  case CollectiveKind::reduce_scatter:
    return ring_time_s(kind, span, bytes);
  case CollectiveKind::all_to_all: {
    const double n = static_cast<double>(span.ranks);
    return all_to_all_time_s(group,
                             AllToAllTraffic{.bytes_per_rank = bytes * (n - 1) / n,
                                             .remote_fraction = uniform_remote_fraction(group),
                                             .load_factor = 1.0});
  }
  case CollectiveKind::send_recv:
    return send_recv_time_s(span, bytes);
  }
  return 0;
}

double CollectiveCostModel::uniform_remote_fraction(const GroupPlacement& group) {
  const Span span = span_of(group);
  if (span.ranks <= 1 || span.domains <= 1)
    return 0;
  return static_cast<double>(span.ranks - span.emptiest_domain_ranks) /
         static_cast<double>(span.ranks - 1);
}

double CollectiveCostModel::all_to_all_time_s(const GroupPlacement& group, double bytes_per_rank,
                                              double load_factor) const {
  return all_to_all_time_s(group, AllToAllTraffic{.bytes_per_rank = bytes_per_rank,
                                                  .remote_fraction = uniform_remote_fraction(group),
                                                  .load_factor = load_factor});
}

double CollectiveCostModel::all_to_all_time_s(const GroupPlacement& group,
                                              const AllToAllTraffic& traffic) const {
  assert(traffic.bytes_per_rank >= 0);
  assert(traffic.load_factor >= 1);
  assert(traffic.remote_fraction >= 0 && traffic.remote_fraction <= 1);
  const Span span = span_of(group);
  if (span.ranks <= 1 || traffic.bytes_per_rank <= 0)
    return 0;
  assert((span.domains >= 2 || traffic.remote_fraction == 0) &&
         "remote traffic in a group inside one NVLink domain");

  const std::int64_t n = span.ranks;
  const double remote_bytes = traffic.bytes_per_rank * traffic.remote_fraction;
  const double local_bytes = traffic.bytes_per_rank - remote_bytes;

  double local_path_s = 0;
  const std::int64_t k = span.fullest_domain_ranks;
  if (k >= 2) {
    // PXN: bytes for a peer on another rail hop over NVLink to the local GPU on that rail first.
    const double pxn_share = static_cast<double>(k - 1) / static_cast<double>(k);
    const double nvlink_bytes = local_bytes + remote_bytes * pxn_share;
    // The measured curve is indexed by the message as nccl-tests counts it (own chunk included).
    const double message_bytes =
        traffic.bytes_per_rank * static_cast<double>(n) / static_cast<double>(n - 1);
    local_path_s = static_cast<double>(k - 1) * nvlink_->step_latency_s +
                   traffic.load_factor * nvlink_bytes /
                       nvlink_bus_bw_Bps(CollectiveKind::all_to_all, n, message_bytes);
  }

  double remote_path_s = 0;
  if (span.domains >= 2 && remote_bytes > 0) {
    const std::int64_t remote_peers = n - span.emptiest_domain_ranks;
    double spine_fraction = 0;
    if (span.leaf_groups >= 2) {
      // Uniform placement: n/L of the group in the sender's leaf group.
      const double peers_in_other_leaf_groups =
          static_cast<double>(n) - static_cast<double>(n) / static_cast<double>(span.leaf_groups);
      spine_fraction =
          std::clamp(peers_in_other_leaf_groups / static_cast<double>(remote_peers), 0.0, 1.0);
    }
    remote_path_s = static_cast<double>(remote_peers) * inter_domain_step_latency_s(span) +
                    traffic.load_factor * remote_bytes / inter_domain_bw_Bps(spine_fraction);
  }
  return call_overhead_s(CollectiveKind::all_to_all, n) + std::max(local_path_s, remote_path_s);
}

} // namespace foldplan
