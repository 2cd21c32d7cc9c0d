// CollectiveCostModel: the time of one NCCL collective on a placed group (topologies/
// group_placement.hpp) — α–β per algorithm step, with the bandwidth of each level the group's
// traffic crosses (NVLink inside a domain, each GPU's NIC share between domains, the spine between
// leaf groups) combined the way NCCL's ring, tree and point-to-point algorithms use them on a
// rail-optimized fat tree. NVLink bandwidth by message size and the fixed cost of a call come from
// measured NCCL curves when the GPU has a calibration; otherwise from the documented defaults
// below. The planner calls this for every group of every candidate plan: each call is a few dozen
// arithmetic operations on figures read once at construction, with no allocation.
//
// How a group's traffic meets the topology (k = the group's ranks per NVLink domain, D domains):
// - Ring (all-reduce, all-gather, reduce-scatter; NCCL's only algorithm for the last two). NCCL
//   builds one ring per channel; inside a domain a channel's ring visits the k local ranks over
//   NVLink, then leaves through one NIC to the next domain, and successive channels leave through
//   different local GPUs' NICs (rail-optimized: NIC i of every node is on rail i). Every ring edge
//   carries the same bytes, factor·S summed over channels, so per domain factor·S leaves through
//   the NICs, spread over the k local GPUs' NIC shares, while each GPU sends (k−1)/k of its
//   factor·S over NVLink:
//     time = factor·S / min(B_nvlink·k/(k−1), k·B_nic) + latency,
//   with B_nic one GPU's share of its NIC (the network level's per-GPU figure) and only the
//   NVLink term inside one domain. Latency: NCCL tuning.cc — of the ring's steps, those crossing
//   domains (2(D−1) for all-reduce, D−1 for the others) pay the network latency, the rest NVLink's.
// - Tree (all-reduce across domains; NCCL picks whichever of ring and tree is faster). A chain
//   through the k local ranks and a double binary tree over domains: every domain sends and
//   receives 2·S through its NICs and each GPU 2·S·(k−1)/k over NVLink, so
//     time = 2·S / (0.92 · min(B_nvlink·k/(k−1), k·B_nic)) + 2·((k−1)·α_nvlink + ⌊log₂D⌋·α_net)
//   (NCCL tuning.cc: tree algorithm bandwidth = bus bandwidth / 2, tree bus bandwidth ×0.92,
//   tree latency). It never wins on bandwidth; it wins on latency at many domains.
// - All-to-all: each rank's bytes to peers in its domain go over NVLink, those to other
//   domains over its NIC share, both at once; NCCL's PXN (default since 2.12) first moves bytes
//   for a peer on another rail over NVLink to the local GPU on that rail, so NVLink also carries
//   (k−1)/k of the remote bytes:
//     time = max((k−1)·α_nvlink + (local + remote·(k−1)/k) / B_nvlink,
//                (n−k)·α_net + remote / B_nic) + overhead,
//   each peer a point-to-point transfer paying its latency.
// - Spine: its per-GPU figure assumes every GPU's traffic crosses it. A fraction f of the
//   inter-domain traffic crossing it sees bandwidth B_spine/f; the hop is limited by
//   min(B_nic, B_spine/f). Rings and trees in rank order cross a leaf-group boundary about once
//   per leaf group (f = leaf groups / domains); uniform all-to-all sends (n − n/L)/(n − k) of its
//   remote bytes to other leaf groups.
// Groups whose domains hold unequal numbers of ranks are costed at their worst domain: the fullest
// for NVLink, the emptiest (at least n − (D−1)·k_max ranks) for NIC shares and remote peers.
//
// Not modelled: NVLink SHARP (NVLS), IB SHARP (CollNet) and PAT, which NCCL may use where available
// (the calibration was measured with NCCL_NVLS_ENABLE=0); NCCL's LL/LL128 protocols, which make
// messages under about 1 MiB on many ranks faster than the per-step latency here says; congestion
// beyond the per-GPU shares.
#pragma once

#include <array>
#include <optional>
#include <vector>

#include "costmodel/collective_calibration.hpp"
#include "costmodel/collective_kind.hpp"
#include "topologies/cluster.hpp"
#include "topologies/gpu_calibration.hpp"
#include "topologies/group_placement.hpp"

namespace foldplan {

// Fraction of the NVLink line rate NCCL's bus bandwidth reaches without calibration: "450GB/s is
// the line rate. With the protocol overhead (~20%) NCCL can get an effective NVLink bandwidth of
// 370GB/s" (S. Jeaugey, NCCL maintainer, NVIDIA/nccl-tests#212, H100). The 2×H200 calibration
// measured 331–369 GB/s at 1 GiB (0.74–0.82).
inline constexpr double kNcclNvlinkEfficiency = 370.0 / 450.0;
// Fraction of the NIC line rate: "24GB/s is the peak performance per 200G NIC" (S. Jeaugey,
// NVIDIA/nccl-tests#119); "CX-7 NICs at NDR rate (400Gbps) should achieve up to 48-49GB/s per NIC",
// including for all-to-all, which "cannot aggregate the bandwidth of multiple NICs"
// (nccl-tests#267).
inline constexpr double kNcclNetworkEfficiency = 0.96;
// NCCL src/graph/tuning.cc (2.19+): tree all-reduce bus bandwidth = 0.92 × the links' (2.10: 0.9).
inline constexpr double kNcclTreeBandwidthFactor = 0.92;

// One rank's share of an all-to-all(-v), as the MoE token dispatcher sends it.
struct AllToAllTraffic {
  // Bytes this rank sends to the *other* ranks of the group (what stays on the rank is free).
  // Uniform traffic of a message of S bytes as nccl-tests counts it: S·(n−1)/n.
  double bytes_per_rank = 0;
  // Share of bytes_per_rank for ranks outside the sender's NVLink domain (for DGX: off its node).
  double remote_fraction = 0;
  // Bytes received by the busiest rank over the mean, ≥ 1 (routing skew; 1 = balanced).
  double load_factor = 1.0;
};

class CollectiveCostModel {
public:
  // Keeps the level figures and the NVLink curves of `calibration` (entries with link "nvlink"
  // of the five kinds; others are not used), not the cluster itself.
  CollectiveCostModel(const Cluster& cluster, std::optional<GpuCalibration> calibration);

  // `bytes` as nccl-tests counts the message: all_reduce the buffer; all_gather the gathered
  // output; reduce_scatter the full input; all_to_all the total sent by one rank (all peers
  // together, its own chunk included); send_recv the message. Uniform traffic. 0 for a group of
  // one or an empty message. A send_recv on a larger group is one transfer across its outermost
  // level.
  double time_s(CollectiveKind kind, const GroupPlacement& group, double bytes) const;

  // All-to-all-v for MoE dispatch with uniform routing: `bytes_per_rank` sent to the other ranks
  // (see AllToAllTraffic), uniform_remote_fraction(group) of it off the sender's domain; the
  // busiest rank receives load_factor × the mean, which scales its bandwidth terms.
  double all_to_all_time_s(const GroupPlacement& group, double bytes_per_rank,
                           double load_factor = 1.0) const;
  double all_to_all_time_s(const GroupPlacement& group, const AllToAllTraffic& traffic) const;

  // Uniform routing: (peers outside the sender's domain) / (n−1), for the rank with the most such
  // peers; 0 inside one domain.
  static double uniform_remote_fraction(const GroupPlacement& group);

  // The bus bandwidth used for NVLink traffic of `kind` at a message of `bytes`: measured when
  // calibrated for a group of `ranks`, else the datasheet rate × kNcclNvlinkEfficiency.
  double nvlink_bus_bw_Bps(CollectiveKind kind, std::int64_t ranks, double bytes) const;
  // One GPU's share of its NIC that NCCL reaches (network level × kNcclNetworkEfficiency).
  double network_bus_bw_Bps() const { return network_.bus_bw_Bps; }
  bool calibrated(CollectiveKind kind) const {
    return !measured_[static_cast<std::size_t>(kind)].empty();
  }

private:
  struct Level {
    double bus_bw_Bps = 0; // achievable per GPU per direction
    double step_latency_s = 0;
  };
  // Where a group sits, in the terms the formulas above use.
  struct Span {
    std::int64_t ranks = 0;
    std::int64_t domains = 0;
    std::int64_t leaf_groups = 0;
    std::int64_t fullest_domain_ranks = 0;  // k for NVLink
    std::int64_t emptiest_domain_ranks = 0; // k for NIC shares and remote peers
  };
  static Span span_of(const GroupPlacement& group);

  const MeasuredBusBandwidth* measured(CollectiveKind kind, std::int64_t ranks) const;
  double call_overhead_s(CollectiveKind kind, std::int64_t ranks) const;
  // Latency of one step between domains: through the spine when the group spans leaf groups.
  double inter_domain_step_latency_s(const Span& span) const;
  // The bandwidth of one GPU's inter-domain hop when `spine_fraction` of that traffic crosses the
  // spine.
  double inter_domain_bw_Bps(double spine_fraction) const;

  double ring_time_s(CollectiveKind kind, const Span& span, double bytes) const;
  double tree_all_reduce_time_s(const Span& span, double bytes) const;
  double send_recv_time_s(const Span& span, double bytes) const;

  std::optional<Level> nvlink_;
  Level network_;
  std::optional<Level> spine_;
  // Per kind, the measured NVLink curves by GPU count (usually one).
  std::array<std::vector<MeasuredBusBandwidth>, kNumCollectiveKinds> measured_;
};

} // namespace foldplan
