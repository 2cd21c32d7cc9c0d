#include "costmodel/collective_calibration.hpp"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "core/errors.hpp"

namespace foldplan {
namespace {

constexpr double kStepLatency_s = 3.4e-6;

// An exact α–β curve: time = α + factor·S / bw, with all_gather on 2 GPUs (factor 1/2, one step).
std::vector<TimedMessage> alpha_beta_points(double alpha_s, double bus_bw_Bps) {
  std::vector<TimedMessage> points;
  for (double bytes = 4096; bytes <= 1073741824.0; bytes *= 4)
    points.push_back({bytes, alpha_s + 0.5 * bytes / bus_bw_Bps});
  return points;
}

TEST(CollectiveCalibration, AlphaBetaCurveGivesItsBandwidthAndOverhead) {
  const std::vector<TimedMessage> points = alpha_beta_points(10e-6, 200e9);
  const std::optional<MeasuredBusBandwidth> curve = MeasuredBusBandwidth::from_points(
      CollectiveKind::all_gather, 2, points, kStepLatency_s, "test");
  ASSERT_TRUE(curve.has_value());
  EXPECT_EQ(curve->gpus(), 2);
  // Floor = the 4 KiB time, 10 µs + 0.5·4096/200e9 = 10.01024 µs; one step is 3.4 µs of it.
  EXPECT_NEAR(curve->call_overhead_s(), 10.01024e-6 - 3.4e-6, 1e-12);
  // The floor took the 4 KiB bytes' time too, so at 1 GiB the bandwidth reads a hair high:
  // 0.5·2^30 / (0.5·2^30/200e9 − 0.01024 µs).
  const double at_1GiB = 0.5 * 1073741824.0 / (0.5 * 1073741824.0 / 200e9 - 0.01024e-6);
  EXPECT_NEAR(curve->bus_bw_Bps(1073741824.0), at_1GiB, at_1GiB * 1e-9);
  EXPECT_NEAR(curve->largest_size_bus_bw_Bps(), at_1GiB, at_1GiB * 1e-9);
}

TEST(CollectiveCalibration, InterpolatesInLogLogAndHoldsFlatOutside) {
  // 2 GPUs all_reduce: factor 1, two steps, floor 10 µs.
  const std::vector<TimedMessage> points = {
      {1e3, 10e-6}, {1e6, 10e-6 + 1e6 / 100e9}, {1e8, 10e-6 + 1e8 / 400e9}};
  const std::optional<MeasuredBusBandwidth> curve = MeasuredBusBandwidth::from_points(
      CollectiveKind::all_reduce, 2, points, kStepLatency_s, "test");
  ASSERT_TRUE(curve.has_value());
  EXPECT_NEAR(curve->call_overhead_s(), 10e-6 - 2 * 3.4e-6, 1e-15);
  EXPECT_NEAR(curve->bus_bw_Bps(1e6), 100e9, 100e9 * 1e-9);
  EXPECT_NEAR(curve->bus_bw_Bps(1e8), 400e9, 400e9 * 1e-9);
  // Geometric midpoint of sizes → geometric mean of bandwidths.
  EXPECT_NEAR(curve->bus_bw_Bps(1e7), 200e9, 200e9 * 1e-9);
  // The 1 KB point sits at the floor and teaches nothing: below 1 MB the curve is flat.
  EXPECT_NEAR(curve->bus_bw_Bps(1e4), 100e9, 100e9 * 1e-9);
  EXPECT_NEAR(curve->bus_bw_Bps(1e10), 400e9, 400e9 * 1e-9);
}

TEST(CollectiveCalibration, NoisyFasterLargerPointKeepsTimeMonotonic) {
  // 4 MB measured faster than 2 MB: its bytes' time is raised to 2 MB's.
  const std::vector<TimedMessage> points = {
      {4096, 8e-6}, {2e6, 8e-6 + 20e-6}, {4e6, 8e-6 + 15e-6}, {8e6, 8e-6 + 60e-6}};
  const std::optional<MeasuredBusBandwidth> curve = MeasuredBusBandwidth::from_points(
      CollectiveKind::send_recv, 2, points, kStepLatency_s, "test");
  ASSERT_TRUE(curve.has_value());
  double previous_transfer_s = 0;
  for (double bytes = 1e5; bytes < 2e7; bytes *= 1.05) {
    const double transfer_s = bytes / curve->bus_bw_Bps(bytes);
    EXPECT_GE(transfer_s, previous_transfer_s * (1 - 1e-12)) << bytes;
    previous_transfer_s = transfer_s;
  }
  EXPECT_NEAR(4e6 / curve->bus_bw_Bps(4e6), 20e-6, 1e-15);
}

TEST(CollectiveCalibration, CurveAtTheLatencyFloorTeachesNothing) {
  const std::vector<TimedMessage> points = {{4096, 9e-6}, {16384, 9e-6}};
  EXPECT_FALSE(MeasuredBusBandwidth::from_points(CollectiveKind::all_reduce, 2, points,
                                                 kStepLatency_s, "test")
                   .has_value());
}

TEST(CollectiveCalibration, RejectsNonPositiveTimesAndSingleGpuCurves) {
  const std::vector<TimedMessage> bad_time = {{4096, 9e-6}, {1e6, 0}};
  EXPECT_THROW(MeasuredBusBandwidth::from_points(CollectiveKind::all_reduce, 2, bad_time,
                                                 kStepLatency_s, "calibration.collectives"),
               InputError);
  const std::vector<TimedMessage> good = {{4096, 9e-6}, {1e6, 20e-6}};
  EXPECT_THROW(MeasuredBusBandwidth::from_points(CollectiveKind::all_reduce, 1, good,
                                                 kStepLatency_s, "calibration.collectives"),
               InputError);
}

} // namespace
} // namespace foldplan
