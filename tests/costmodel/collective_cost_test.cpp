#include "costmodel/collective_cost.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/file_io.hpp"

namespace foldplan {
namespace {

constexpr double kMiB = 1048576.0;
constexpr double kGiB = 1073741824.0;

// dgx-h100 / dgx-h200 figures as NCCL reaches them, written out by hand:
constexpr double kNvlinkStep_s = 3.4e-6;  // nvlink_latency_us
constexpr double kNetworkStep_s = 9.6e-6; // network_latency_us
constexpr double kNvlinkBus_Bps = 370e9;  // 450 GB/s line rate, NCCL's ~370 GB/s
constexpr double kNicBus_Bps = 48e9;      // 400 Gb/s = 50 GB/s per GPU, 0.96 of it

constexpr CollectiveKind kAllKinds[] = {CollectiveKind::all_reduce, CollectiveKind::all_gather,
                                        CollectiveKind::reduce_scatter, CollectiveKind::all_to_all,
                                        CollectiveKind::send_recv};

GroupPlacement placed(const Cluster& cluster, std::int64_t first, std::int64_t count,
                      std::int64_t stride = 1) {
  std::vector<std::int64_t> ranks;
  for (std::int64_t i = 0; i < count; ++i)
    ranks.push_back(first + i * stride);
  return place_group(cluster, ranks);
}

// The NCCL points of topologies/calibration/h200.json (2×H200, NVLink), read here directly so
// that these tests do not depend on the calibration loader. `keep` filters points.
template <typename Keep> GpuCalibration h200_collectives(Keep keep) {
  const nlohmann::json file = nlohmann::json::parse(
      read_text_file(std::string(FOLDPLAN_SOURCE_DIR) + "/topologies/calibration/h200.json"));
  GpuCalibration calibration;
  calibration.gpu = "H200";
  for (const nlohmann::json& point : file.at("collectives")) {
    CollectiveMeasurement measurement{.kind = point.at("kind").get<std::string>(),
                                      .gpus = point.at("gpus").get<std::int64_t>(),
                                      .link = point.at("link").get<std::string>(),
                                      .bytes = point.at("bytes").get<double>(),
                                      .time_s = point.at("time_s").get<double>(),
                                      .busbw_Bps = point.at("busbw_Bps").get<double>()};
    if (keep(measurement))
      calibration.collectives.push_back(measurement);
  }
  return calibration;
}
GpuCalibration h200_collectives() {
  return h200_collectives([](const CollectiveMeasurement&) { return true; });
}

ClusterSpec dgx_h100_with_leaves(std::int64_t nodes_per_leaf, double oversubscription) {
  ClusterSpec spec = load_cluster("dgx-h100");
  spec.nodes_per_leaf = nodes_per_leaf;
  spec.oversubscription = oversubscription;
  return spec;
}

TEST(CollectiveCost, EightGpuNvlinkAllReduceIsAlphaBetaUncalibrated) {
  const Cluster cluster(load_cluster("dgx-h100"), 8);
  const CollectiveCostModel model(cluster, std::nullopt);
  // Ring: 2·7 steps at 3.4 µs; each rank moves 2·7/8 of the buffer at 370 GB/s.
  const double expected_s = 14 * kNvlinkStep_s + 2.0 * 7 / 8 * kGiB / kNvlinkBus_Bps;
  EXPECT_NEAR(model.time_s(CollectiveKind::all_reduce, placed(cluster, 0, 8), kGiB), expected_s,
              expected_s * 1e-12);
  // All-gather and reduce-scatter: 7 steps, 7/8 of the message.
  const double gather_s = 7 * kNvlinkStep_s + 7.0 / 8 * kGiB / kNvlinkBus_Bps;
  EXPECT_NEAR(model.time_s(CollectiveKind::all_gather, placed(cluster, 0, 8), kGiB), gather_s,
              gather_s * 1e-12);
  EXPECT_NEAR(model.time_s(CollectiveKind::reduce_scatter, placed(cluster, 0, 8), kGiB), gather_s,
              gather_s * 1e-12);
  EXPECT_FALSE(model.calibrated(CollectiveKind::all_reduce));
}

TEST(CollectiveCost, CalibratedTwoGpuH200ReproducesMeasuredTimes) {
  const Cluster cluster(load_cluster("dgx-h200"), 2);
  const CollectiveCostModel model(cluster, h200_collectives());
  const GroupPlacement pair = placed(cluster, 0, 2);
  struct Case {
    CollectiveKind kind;
    double bytes;
    double measured_s; // docs/measurements.md, NCCL on 2 × H200 over NV18
  };
  const Case cases[] = {
      {CollectiveKind::all_reduce, kMiB, 17.86e-6},
      {CollectiveKind::all_reduce, 64 * kMiB, 249.7e-6},
      {CollectiveKind::all_reduce, kGiB, 3240e-6},
      {CollectiveKind::all_gather, kMiB, 14.72e-6},
      {CollectiveKind::all_gather, 64 * kMiB, 159.2e-6},
      {CollectiveKind::all_gather, kGiB, 1982e-6},
      {CollectiveKind::all_to_all, 64 * kMiB, 139.4e-6},
      {CollectiveKind::send_recv, 64 * kMiB, 200.1e-6},
  };
  for (const Case& c : cases) {
    EXPECT_TRUE(model.calibrated(c.kind));
    EXPECT_NEAR(model.time_s(c.kind, pair, c.bytes), c.measured_s, 0.10 * c.measured_s)
        << collective_name(c.kind) << " " << c.bytes;
  }
}

TEST(CollectiveCost, CalibratedCurvePredictsASizeItWasNotGiven) {
  const Cluster cluster(load_cluster("dgx-h200"), 2);
  const GroupPlacement pair = placed(cluster, 0, 2);
  struct Case {
    CollectiveKind kind;
    double bytes;
    double measured_s;
  };
  const Case cases[] = {
      {CollectiveKind::all_reduce, kMiB, 17.86e-6},
      {CollectiveKind::all_reduce, 64 * kMiB, 249.7e-6},
      {CollectiveKind::all_gather, kMiB, 14.72e-6},
      {CollectiveKind::all_gather, 64 * kMiB, 159.2e-6},
  };
  for (const Case& c : cases) {
    const CollectiveCostModel model(
        cluster, h200_collectives([&](const CollectiveMeasurement& point) {
          return !(point.kind == collective_name(c.kind) && point.bytes == c.bytes);
        }));
    EXPECT_NEAR(model.time_s(c.kind, pair, c.bytes), c.measured_s, 0.10 * c.measured_s)
        << collective_name(c.kind) << " " << c.bytes << " left out";
  }
}

TEST(CollectiveCost, CalibrationCarriesToEightGpusByBusBandwidthAndSteps) {
  const Cluster cluster(load_cluster("dgx-h200"), 8);
  const CollectiveCostModel model(cluster, h200_collectives());
  // Measured on 2 GPUs: all_reduce floor 8.864 µs (4 KiB) = 2 steps of 3.4 µs + 2.064 µs of call;
  // 256 MiB took 890.4 µs, so its bytes took 881.536 µs at bus factor 1.
  const double bus_bw_Bps = 256 * kMiB / (890.4e-6 - 8.864e-6);
  const double expected_s =
      (8.864e-6 - 2 * kNvlinkStep_s) + 14 * kNvlinkStep_s + 2.0 * 7 / 8 * 256 * kMiB / bus_bw_Bps;
  EXPECT_NEAR(model.time_s(CollectiveKind::all_reduce, placed(cluster, 0, 8), 256 * kMiB),
              expected_s, expected_s * 1e-9);
  EXPECT_NEAR(model.nvlink_bus_bw_Bps(CollectiveKind::all_reduce, 8, 256 * kMiB), bus_bw_Bps,
              bus_bw_Bps * 1e-9);
}

TEST(CollectiveCost, KindsWithoutACurveFallBackToTheDefaults) {
  const Cluster cluster(load_cluster("dgx-h200"), 8);
  const CollectiveCostModel model(cluster, h200_collectives([](const CollectiveMeasurement& point) {
                                    return point.kind == "all_reduce";
                                  }));
  EXPECT_TRUE(model.calibrated(CollectiveKind::all_reduce));
  EXPECT_FALSE(model.calibrated(CollectiveKind::all_gather));
  const double expected_s = 7 * kNvlinkStep_s + 7.0 / 8 * 64 * kMiB / kNvlinkBus_Bps;
  EXPECT_NEAR(model.time_s(CollectiveKind::all_gather, placed(cluster, 0, 8), 64 * kMiB),
              expected_s, expected_s * 1e-12);
}

TEST(CollectiveCost, AllGatherOverSixteenNodesRunsAtTheNicShare) {
  const Cluster cluster(load_cluster("dgx-h100"), 128);
  const CollectiveCostModel model(cluster, std::nullopt);
  // One rank per node: every ring step crosses the network; each GPU has one 400 Gb/s NIC.
  const GroupPlacement dp = placed(cluster, 0, 16, 8);
  const double expected_s = 15 * kNetworkStep_s + 15.0 / 16 * kGiB / kNicBus_Bps;
  EXPECT_NEAR(model.time_s(CollectiveKind::all_gather, dp, kGiB), expected_s, expected_s * 1e-12);
  EXPECT_NEAR(model.network_bus_bw_Bps(), kNicBus_Bps, 1);
}

TEST(CollectiveCost, TwoFullNodesAllReduceRingIsLimitedByTheirEightNics) {
  const Cluster cluster(load_cluster("dgx-h100"), 16);
  const CollectiveCostModel model(cluster, std::nullopt);
  // Ring: bus bandwidth min(370·8/7, 8·48) = 384 GB/s; 2·(16−2) NVLink steps, 2 network steps.
  const double ring_s =
      28 * kNvlinkStep_s + 2 * kNetworkStep_s + 2.0 * 15 / 16 * kGiB / (8 * kNicBus_Bps);
  // Tree: 2·(7 NVLink + 1 network) steps, 2·S at 0.92 × 384 GB/s: slower at 1 GiB.
  const double tree_s =
      2 * (7 * kNvlinkStep_s + kNetworkStep_s) + 2 * kGiB / (0.92 * 8 * kNicBus_Bps);
  ASSERT_LT(ring_s, tree_s);
  EXPECT_NEAR(model.time_s(CollectiveKind::all_reduce, placed(cluster, 0, 16), kGiB), ring_s,
              ring_s * 1e-12);
}

TEST(CollectiveCost, WithFasterNicsNvlinkLimitsMultiNodeRingsAndTrees) {
  // 800 Gb/s per GPU: the 8 NIC shares (8 × 96 GB/s) outrun NVLink, which carries 7/8 of each
  // GPU's bytes, so the bus bandwidth is 370 GB/s × 8/7.
  ClusterSpec spec = load_cluster("dgx-h100");
  spec.nic_bw_Bps = 100e9;
  const Cluster cluster(spec, 2048);
  const CollectiveCostModel model(cluster, std::nullopt);
  const double nvlink_limited_Bps = kNvlinkBus_Bps * 8 / 7;
  const double ring_s =
      28 * kNvlinkStep_s + 2 * kNetworkStep_s + 2.0 * 15 / 16 * kGiB / nvlink_limited_Bps;
  EXPECT_NEAR(model.time_s(CollectiveKind::all_reduce, placed(cluster, 0, 16), kGiB), ring_s,
              ring_s * 1e-12);
  // 256 full nodes, 1 MiB: the tree (2·(7 + 8) steps) beats the ring's 2·2047 steps.
  const double tree_s =
      2 * (7 * kNvlinkStep_s + 8 * kNetworkStep_s) + 2 * kMiB / (0.92 * nvlink_limited_Bps);
  EXPECT_NEAR(model.time_s(CollectiveKind::all_reduce, placed(cluster, 0, 2048), kMiB), tree_s,
              tree_s * 1e-12);
}

TEST(CollectiveCost, TreeAllReduceWinsForSmallMessagesOverManyNodes) {
  const Cluster cluster(load_cluster("dgx-h100"), 2048);
  const CollectiveCostModel model(cluster, std::nullopt);
  const GroupPlacement dp = placed(cluster, 0, 256, 8); // 256 nodes in 8 leaf groups
  const double ring_s = 2 * 255 * kNetworkStep_s + 2.0 * 255 / 256 * kMiB / kNicBus_Bps;
  const double tree_s = 2 * 8 * kNetworkStep_s + 2 * kMiB / (0.92 * kNicBus_Bps);
  ASSERT_LT(tree_s, ring_s);
  EXPECT_NEAR(model.time_s(CollectiveKind::all_reduce, dp, kMiB), tree_s, tree_s * 1e-12);
  // The ring's 510 steps cost 4.9 ms of latency; only at 4 GiB does its bandwidth win it back.
  const double big_ring_s = 2 * 255 * kNetworkStep_s + 2.0 * 255 / 256 * 4 * kGiB / kNicBus_Bps;
  const double big_tree_s = 2 * 8 * kNetworkStep_s + 2 * 4 * kGiB / (0.92 * kNicBus_Bps);
  ASSERT_LT(big_ring_s, big_tree_s);
  EXPECT_NEAR(model.time_s(CollectiveKind::all_reduce, dp, 4 * kGiB), big_ring_s,
              big_ring_s * 1e-12);
  EXPECT_NEAR(model.time_s(CollectiveKind::all_reduce, dp, kGiB),
              2 * 8 * kNetworkStep_s + 2 * kGiB / (0.92 * kNicBus_Bps), 1e-12);
}

TEST(CollectiveCost, ExpertAllToAllAcrossNodesIsSeveralTimesSlowerPerByte) {
  const Cluster cluster(load_cluster("dgx-h100"), 16);
  const CollectiveCostModel model(cluster, std::nullopt);
  const double message = 64 * kMiB;
  // EP8 in one node: 7 peers over NVLink.
  const double ep8_s = 7 * kNvlinkStep_s + 7.0 / 8 * message / kNvlinkBus_Bps;
  // EP16 over two nodes: 7 local peers, 8 remote; NVLink also carries 7/8 of the remote bytes
  // (PXN); the remote half leaves through the GPU's own NIC share.
  const double ep16_local_s =
      7 * kNvlinkStep_s + message * (7.0 / 16 + 8.0 / 16 * 7 / 8) / kNvlinkBus_Bps;
  const double ep16_remote_s = 8 * kNetworkStep_s + message * 8 / 16 / kNicBus_Bps;
  const double ep16_s = std::max(ep16_local_s, ep16_remote_s);

  const double ep8_model_s =
      model.time_s(CollectiveKind::all_to_all, placed(cluster, 0, 8), message);
  const double ep16_model_s =
      model.time_s(CollectiveKind::all_to_all, placed(cluster, 0, 16), message);
  EXPECT_NEAR(ep8_model_s, ep8_s, ep8_s * 1e-12);
  EXPECT_NEAR(ep16_model_s, ep16_s, ep16_s * 1e-12);
  const double ep8_per_byte = ep8_model_s / (message * 7 / 8);
  const double ep16_per_byte = ep16_model_s / (message * 15 / 16);
  EXPECT_GT(ep16_per_byte, 3 * ep8_per_byte);
}

TEST(CollectiveCost, ExpertAllToAllAcrossNodesIsSlowerPerByteWhenCalibratedToo) {
  const Cluster cluster(load_cluster("dgx-h200"), 16);
  const CollectiveCostModel model(cluster, h200_collectives());
  for (const double message : {16 * kMiB, 64 * kMiB, 256 * kMiB}) {
    const double ep8_per_byte =
        model.time_s(CollectiveKind::all_to_all, placed(cluster, 0, 8), message) /
        (message * 7 / 8);
    const double ep16_per_byte =
        model.time_s(CollectiveKind::all_to_all, placed(cluster, 0, 16), message) /
        (message * 15 / 16);
    // Measured NVLink all-to-all is slower than the 370 GB/s default at these sizes (2×H200:
    // 159 GB/s at 16 MiB, 241 at 64 MiB), so the gap narrows to 2.3–3.2× but stays wide.
    EXPECT_GT(ep16_per_byte, 2 * ep8_per_byte) << message;
  }
}

TEST(CollectiveCost, OversubscribedSpineSlowsAllToAllAcrossLeafGroups) {
  // One node per leaf group, so EP16 over two nodes sends all its remote bytes over the spine.
  const Cluster blocking(dgx_h100_with_leaves(1, 1.0), 16);
  const Cluster oversubscribed(dgx_h100_with_leaves(1, 2.0), 16);
  const CollectiveCostModel blocking_model(blocking, std::nullopt);
  const CollectiveCostModel oversubscribed_model(oversubscribed, std::nullopt);
  const double message = 64 * kMiB;
  const double remote_bytes = message * 8 / 16;
  const double full_rate_s = 8 * kNetworkStep_s + remote_bytes / kNicBus_Bps;
  const double half_rate_s = 8 * kNetworkStep_s + remote_bytes / (kNicBus_Bps / 2);
  EXPECT_NEAR(blocking_model.time_s(CollectiveKind::all_to_all, placed(blocking, 0, 16), message),
              full_rate_s, full_rate_s * 1e-12);
  EXPECT_NEAR(oversubscribed_model.time_s(CollectiveKind::all_to_all, placed(oversubscribed, 0, 16),
                                          message),
              half_rate_s, half_rate_s * 1e-12);
}

TEST(CollectiveCost, OversubscriptionBarelyTouchesRingsThatCrossTheSpineOncePerLeafGroup) {
  // 64 nodes in 2 leaf groups, one rank per node: 2 of the ring's 64 node-to-node edges cross
  // the spine, far under the half rate an oversubscription of 2 leaves.
  const Cluster blocking(dgx_h100_with_leaves(32, 1.0), 512);
  const Cluster oversubscribed(dgx_h100_with_leaves(32, 2.0), 512);
  const CollectiveCostModel blocking_model(blocking, std::nullopt);
  const CollectiveCostModel oversubscribed_model(oversubscribed, std::nullopt);
  EXPECT_DOUBLE_EQ(
      blocking_model.time_s(CollectiveKind::all_gather, placed(blocking, 0, 64, 8), kGiB),
      oversubscribed_model.time_s(CollectiveKind::all_gather, placed(oversubscribed, 0, 64, 8),
                                  kGiB));
  // All-to-all over the same ranks sends 32 of each rank's 63 peers' bytes over the spine: at half
  // rate that fraction alone (24 GB/s over 32/63) just undercuts the NIC's 48 GB/s.
  const double spine_limited_s = 63 * kNetworkStep_s + 64 * kMiB / (24e9 * 63 / 32);
  const double nic_limited_s = 63 * kNetworkStep_s + 64 * kMiB / kNicBus_Bps;
  EXPECT_NEAR(oversubscribed_model.all_to_all_time_s(placed(oversubscribed, 0, 64, 8), 64 * kMiB),
              spine_limited_s, spine_limited_s * 1e-12);
  EXPECT_NEAR(blocking_model.all_to_all_time_s(placed(blocking, 0, 64, 8), 64 * kMiB),
              nic_limited_s, nic_limited_s * 1e-12);
}

TEST(CollectiveCost, LoadFactorDoublesTheBusiestRanksBandwidthTerm) {
  const Cluster cluster(load_cluster("dgx-h100"), 16);
  const CollectiveCostModel model(cluster, std::nullopt);
  const double bytes_per_rank = 56 * kMiB;

  const GroupPlacement ep8 = placed(cluster, 0, 8);
  const double ep8_latency_s = 7 * kNvlinkStep_s;
  EXPECT_NEAR(model.all_to_all_time_s(ep8, bytes_per_rank, 2.0),
              ep8_latency_s + 2 * bytes_per_rank / kNvlinkBus_Bps, 1e-12);
  EXPECT_NEAR(model.all_to_all_time_s(ep8, bytes_per_rank, 2.0) - ep8_latency_s,
              2 * (model.all_to_all_time_s(ep8, bytes_per_rank) - ep8_latency_s), 1e-12);

  // Across two nodes the remote path is the slower one: its bandwidth term doubles.
  const GroupPlacement ep16 = placed(cluster, 0, 16);
  const double remote_bytes = bytes_per_rank * 8 / 15;
  EXPECT_NEAR(model.all_to_all_time_s(ep16, bytes_per_rank, 2.0),
              8 * kNetworkStep_s + 2 * remote_bytes / kNicBus_Bps, 1e-12);
}

TEST(CollectiveCost, ExplicitRemoteFractionSplitsTheTraffic) {
  const Cluster cluster(load_cluster("dgx-h100"), 16);
  const CollectiveCostModel model(cluster, std::nullopt);
  const GroupPlacement ep16 = placed(cluster, 0, 16);
  // Routing that keeps 3/4 of the tokens on the node: a quarter goes to the network.
  const AllToAllTraffic traffic{.bytes_per_rank = 60 * kMiB, .remote_fraction = 0.25};
  const double expected_s = 8 * kNetworkStep_s + 15 * kMiB / kNicBus_Bps;
  EXPECT_NEAR(model.all_to_all_time_s(ep16, traffic), expected_s, expected_s * 1e-12);
  EXPECT_LT(model.all_to_all_time_s(ep16, traffic), model.all_to_all_time_s(ep16, 60 * kMiB));
}

TEST(CollectiveCost, MostlyLocalAllToAllIsLimitedByNvlinkCarryingPxnHops) {
  const Cluster cluster(load_cluster("dgx-h100"), 16);
  const CollectiveCostModel model(cluster, std::nullopt);
  // 5% of the bytes leave the node: the NIC path (8 × 9.6 µs + 3.4 MB / 48 GB/s = 146.7 µs) is
  // shorter than NVLink's, which carries the local 95% and 7/8 of the remote 5% (PXN).
  const double bytes_per_rank = 64 * kMiB;
  const AllToAllTraffic traffic{.bytes_per_rank = bytes_per_rank, .remote_fraction = 0.05};
  const double expected_s =
      7 * kNvlinkStep_s + bytes_per_rank * (0.95 + 0.05 * 7 / 8) / kNvlinkBus_Bps;
  EXPECT_NEAR(model.all_to_all_time_s(placed(cluster, 0, 16), traffic), expected_s,
              expected_s * 1e-12);
}

TEST(CollectiveCost, AllToAllMessageAndPerRankFormsAgree) {
  const Cluster cluster(load_cluster("dgx-h200"), 32);
  const CollectiveCostModel model(cluster, h200_collectives());
  for (const std::int64_t ep : {2, 8, 16, 32}) {
    const GroupPlacement group = placed(cluster, 0, ep);
    const double n = static_cast<double>(ep);
    EXPECT_DOUBLE_EQ(model.time_s(CollectiveKind::all_to_all, group, 64 * kMiB),
                     model.all_to_all_time_s(group, 64 * kMiB * (n - 1) / n))
        << ep;
  }
}

TEST(CollectiveCost, UniformRemoteFractionCountsPeersOffTheDomain) {
  const Cluster cluster(load_cluster("dgx-h100"), 128);
  EXPECT_EQ(CollectiveCostModel::uniform_remote_fraction(placed(cluster, 0, 8)), 0.0);
  EXPECT_DOUBLE_EQ(CollectiveCostModel::uniform_remote_fraction(placed(cluster, 0, 16)), 8.0 / 15);
  EXPECT_DOUBLE_EQ(CollectiveCostModel::uniform_remote_fraction(placed(cluster, 0, 16, 8)), 1.0);
  // 8 + 4 ranks: the rank on the emptier node has 8 of its 11 peers remote.
  EXPECT_DOUBLE_EQ(CollectiveCostModel::uniform_remote_fraction(placed(cluster, 0, 12)), 8.0 / 11);
  // TP=2 stride: 4 ranks per node on 4 nodes.
  EXPECT_DOUBLE_EQ(CollectiveCostModel::uniform_remote_fraction(placed(cluster, 0, 16, 2)),
                   12.0 / 15);
}

TEST(CollectiveCost, SendRecvCrossesTheGroupsOutermostLevel) {
  const Cluster cluster(load_cluster("dgx-h100"), 16);
  const CollectiveCostModel model(cluster, std::nullopt);
  const double bytes = 48 * kMiB;
  const std::vector<std::int64_t> same_node = {0, 4};
  const std::vector<std::int64_t> across_nodes = {0, 8};
  EXPECT_NEAR(model.time_s(CollectiveKind::send_recv, place_group(cluster, same_node), bytes),
              kNvlinkStep_s + bytes / kNvlinkBus_Bps, 1e-15);
  EXPECT_NEAR(model.time_s(CollectiveKind::send_recv, place_group(cluster, across_nodes), bytes),
              kNetworkStep_s + bytes / kNicBus_Bps, 1e-15);
}

TEST(CollectiveCost, GroupOfOneAndEmptyMessagesCostNothing) {
  const Cluster cluster(load_cluster("dgx-h200"), 16);
  const CollectiveCostModel model(cluster, h200_collectives());
  const GroupPlacement alone = placed(cluster, 3, 1);
  for (const CollectiveKind kind : kAllKinds) {
    EXPECT_EQ(model.time_s(kind, alone, kGiB), 0.0) << collective_name(kind);
    EXPECT_EQ(model.time_s(kind, placed(cluster, 0, 16), 0.0), 0.0) << collective_name(kind);
  }
  EXPECT_EQ(model.all_to_all_time_s(alone, kGiB, 3.0), 0.0);
}

TEST(CollectiveCost, TimeGrowsWithBytesEverywhere) {
  const Cluster h100(load_cluster("dgx-h100"), 256);
  const Cluster h200(load_cluster("dgx-h200"), 256);
  const CollectiveCostModel uncalibrated(h100, std::nullopt);
  const CollectiveCostModel calibrated(h200, h200_collectives());
  struct Setup {
    const Cluster& cluster;
    const CollectiveCostModel& model;
  };
  for (const Setup& setup : {Setup{h100, uncalibrated}, Setup{h200, calibrated}}) {
    const std::vector<GroupPlacement> groups = {
        placed(setup.cluster, 0, 2),     placed(setup.cluster, 0, 8),
        placed(setup.cluster, 0, 16),    placed(setup.cluster, 0, 16, 8),
        placed(setup.cluster, 0, 32, 2), placed(setup.cluster, 0, 12),
        placed(setup.cluster, 0, 256)};
    for (const GroupPlacement& group : groups) {
      for (const CollectiveKind kind : kAllKinds) {
        double previous_s = 0;
        // Every measured size and the sizes between them, 1 B to 8 GiB.
        for (double bytes = 1; bytes <= 8 * kGiB; bytes *= std::sqrt(2.0)) {
          const double time_s = setup.model.time_s(kind, group, bytes);
          ASSERT_GT(time_s, 0) << collective_name(kind) << " " << bytes;
          ASSERT_GE(time_s, previous_s)
              << collective_name(kind) << " " << bytes << " on " << group.num_ranks << " ranks";
          previous_s = time_s;
        }
      }
    }
  }
}

TEST(CollectiveCost, MoreBandwidthNeverCostsMoreTime) {
  ClusterSpec slow = load_cluster("dgx-h100");
  ClusterSpec fast = slow;
  fast.nvlink_bw_Bps *= 2;
  fast.nic_bw_Bps *= 2;
  const Cluster slow_cluster(slow, 64);
  const Cluster fast_cluster(fast, 64);
  const CollectiveCostModel slow_model(slow_cluster, std::nullopt);
  const CollectiveCostModel fast_model(fast_cluster, std::nullopt);
  for (const CollectiveKind kind : kAllKinds) {
    for (const std::int64_t stride : {1, 8}) {
      EXPECT_LT(fast_model.time_s(kind, placed(fast_cluster, 0, 8, stride), kGiB),
                slow_model.time_s(kind, placed(slow_cluster, 0, 8, stride), kGiB))
          << collective_name(kind) << " stride " << stride;
    }
  }
}

} // namespace
} // namespace foldplan
