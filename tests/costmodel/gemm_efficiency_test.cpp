#include "costmodel/gemm_efficiency.hpp"

#include <cmath>

#include <gtest/gtest.h>

#include "topologies/cluster_spec.hpp"
#include "topologies/gpu_calibration.hpp"

namespace foldplan {
namespace {

TEST(PhysicalGemmModel, A100LargeGemmByHand) {
  const GpuSpec a100 = load_cluster("dgx-a100").gpu; // 312 TFLOP/s, 108 SMs
  // 8192³ in 128×256 tiles: 64·32 = 2048 tiles in ceil(2048/108) = 19 waves; each tile does
  // 2·128·256·(8192 + 128) FLOPs (its k steps plus the fixed cost) at 312e12·0.70/108 per SM.
  // (128×192 tiles need 26 waves; splitting k only adds waves.)
  const double tile_time_s = 2.0 * 128 * 256 * (8192 + 128) / (312e12 * 0.70 / 108);
  const double by_hand_s = 19 * tile_time_s;
  const PhysicalGemmModel model(a100);
  EXPECT_NEAR(model.time_s(8192, 8192, 8192, GemmPrecision::bf16), by_hand_s, 1e-9 * by_hand_s);
  // Within 2% of FLOPs over the ceiling.
  const double ceiling_s = 2.0 * 8192 * 8192 * 8192 / (312e12 * kGemmPeakFractionBf16);
  EXPECT_NEAR(model.time_s(8192, 8192, 8192, GemmPrecision::bf16), ceiling_s, 0.02 * ceiling_s);
}

TEST(PhysicalGemmModel, AWeightStreamingGemmIsPricedAtItsBytes) {
  const GpuSpec h100 = load_cluster("dgx-h100").gpu;
  // 64×8192×8192: the 128 MiB of weights dominate; the model's time is at least streaming them
  // once (at 0.90 of 3.35 TB/s) and, with split-K's partial sums, not much more.
  const double bytes = 2.0 * (64.0 * 8192 + 8192.0 * 8192) + 2.0 * 64 * 8192;
  const double streaming_s = bytes / (3.35e12 * 0.90);
  const double modelled_s = PhysicalGemmModel(h100).time_s(64, 8192, 8192, GemmPrecision::bf16);
  EXPECT_GE(modelled_s, streaming_s);
  EXPECT_LE(modelled_s, 1.15 * streaming_s);
}

TEST(PhysicalGemmModel, TimeGrowsWithEveryDimension) {
  const PhysicalGemmModel model(load_cluster("gb200-nvl72").gpu);
  for (double m = 1; m < 40000; m *= 1.37) {
    for (double n = 16; n < 70000; n *= 2.9) {
      for (double k = 16; k < 70000; k *= 2.9) {
        for (const GemmPrecision precision : {GemmPrecision::bf16, GemmPrecision::fp8}) {
          const double time = model.time_s(m, n, k, precision);
          EXPECT_LE(time, model.time_s(m + 1, n, k, precision)) << m << " " << n << " " << k;
          EXPECT_LE(time, model.time_s(m, n + 1, k, precision)) << m << " " << n << " " << k;
          EXPECT_LE(time, model.time_s(m, n, k + 1, precision)) << m << " " << n << " " << k;
        }
      }
    }
  }
}

TEST(GemmEfficiencyTable, BelowTheMeasuredRangeTimeFollowsTheTileCount) {
  const GpuSpec h100 = load_cluster("dgx-h100").gpu;
  const GpuCalibration table = *builtin_calibration(h100.name);
  const GemmEfficiencyTable bf16(table.gemm_bf16, h100, GemmPrecision::bf16);
  const auto time_s = [&](double m, double n, double k) {
    return 2 * m * n * k / (h100.bf16_flops * bf16.efficiency(m, n, k));
  };
  // m below 64: the same single 128-row tile, the same time.
  EXPECT_NEAR(time_s(16, 4096, 4096), time_s(64, 4096, 4096), 1e-15);
  // n below 512: 256-column tiles, one instead of two.
  EXPECT_NEAR(time_s(4096, 256, 4096), time_s(4096, 512, 4096) / 2, 1e-15);
  // k below 512: per-tile work k + 128.
  EXPECT_NEAR(time_s(4096, 4096, 256), time_s(4096, 4096, 512) * (256.0 + 128) / (512 + 128),
              1e-15);
  // Above the range the efficiency holds.
  EXPECT_DOUBLE_EQ(bf16.efficiency(65536, 4096, 4096), bf16.efficiency(16384, 4096, 4096));
}

} // namespace
} // namespace foldplan
