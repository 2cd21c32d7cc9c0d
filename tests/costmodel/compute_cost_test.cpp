#include "costmodel/compute_cost.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "topologies/cluster_spec.hpp"
#include "topologies/gpu_calibration.hpp"

namespace foldplan {
namespace {

constexpr auto kBf16 = GemmPrecision::bf16;
constexpr auto kFp8 = GemmPrecision::fp8;

GpuSpec gpu_of(const char* cluster) {
  return load_cluster(cluster).gpu;
}

double measured_time_s(const GemmMeasurement& point) {
  return 2.0 * static_cast<double>(point.m) * static_cast<double>(point.n) *
         static_cast<double>(point.k) / (point.tflops * 1e12);
}

const GemmMeasurement& find_point(const std::vector<GemmMeasurement>& points, std::int64_t m,
                                  std::int64_t n, std::int64_t k) {
  const auto it = std::find_if(points.begin(), points.end(), [&](const GemmMeasurement& point) {
    return point.m == m && point.n == n && point.k == k;
  });
  if (it == points.end())
    throw std::logic_error("shape not in the table");
  return *it;
}

class CalibratedH100 : public ::testing::Test {
protected:
  GpuSpec gpu = gpu_of("dgx-h100");
  GpuCalibration table = *builtin_calibration(gpu.name);
  ComputeCostModel model{gpu, table};
};

TEST_F(CalibratedH100, IsCalibratedAndAPhysicalModelIsNot) {
  EXPECT_TRUE(model.calibrated());
  EXPECT_FALSE(ComputeCostModel(gpu, std::nullopt).calibrated());
}

TEST_F(CalibratedH100, MeasuredGemmsComeBackAtTheirMeasuredTimes) {
  for (const GemmPrecision precision : {kBf16, kFp8}) {
    const std::vector<GemmMeasurement>& points =
        precision == kBf16 ? table.gemm_bf16 : table.gemm_fp8;
    int exact = 0;
    for (const GemmMeasurement& point : points) {
      // A point whose time exceeds that of a larger measured shape comes back at that time (a
      // smaller GEMM can always run as the larger one); every other point at its own.
      double expected = measured_time_s(point);
      for (const GemmMeasurement& larger : points) {
        if (larger.m >= point.m && larger.n >= point.n && larger.k >= point.k)
          expected = std::min(expected, measured_time_s(larger));
      }
      const double modelled = model.gemm_time_s(point.m, point.n, point.k, precision);
      EXPECT_NEAR(modelled / expected, 1.0, 0.01) << point.m << "×" << point.n << "×" << point.k;
      exact += std::fabs(modelled / measured_time_s(point) - 1) < 0.01 ? 1 : 0;
    }
    // Inversions are rare: cuBLAS heuristics, mostly at m = 64 (docs/measurements.md).
    EXPECT_GE(exact, static_cast<int>(0.95 * static_cast<double>(points.size())));
  }
  EXPECT_NEAR(model.gemm_efficiency(8192, 8192, 8192, kBf16) * 989.5, 688, 688 * 0.01);
  EXPECT_NEAR(model.gemm_efficiency(4096, 14336, 4096, kBf16) * 989.5, 729.2, 729.2 * 0.01);
  EXPECT_NEAR(model.gemm_efficiency(1024, 1024, 1024, kBf16) * 989.5, 277.5, 277.5 * 0.01);
  EXPECT_NEAR(model.gemm_efficiency(8192, 8192, 8192, kFp8) * 1979, 1308, 1308 * 0.01);
}

TEST_F(CalibratedH100, BetweenTwoMeasuredShapesTimeFollowsAPowerLaw) {
  const double t_smaller = measured_time_s(find_point(table.gemm_bf16, 1024, 4096, 4096));
  const double t_larger = measured_time_s(find_point(table.gemm_bf16, 2048, 4096, 4096));
  for (const std::int64_t m : {1100, 1448, 1500, 2000}) {
    const double time = model.gemm_time_s(m, 4096, 4096, kBf16);
    EXPECT_GT(time, t_smaller) << m;
    EXPECT_LT(time, t_larger) << m;
    // Linear in log m and log time: t = t_smaller · (t_larger / t_smaller)^fraction.
    const double fraction = std::log(static_cast<double>(m) / 1024) / std::log(2.0);
    EXPECT_NEAR(time, t_smaller * std::pow(t_larger / t_smaller, fraction), 1e-9 * time) << m;
  }
}

TEST_F(CalibratedH100, GemmTimeGrowsWithMNAndKInsideAndBeyondTheTable) {
  for (const GemmPrecision precision : {kBf16, kFp8}) {
    for (double m = 8; m < 70000; m *= 1.19) {
      for (double n = 100; n < 70000; n *= 2.3) {
        for (double k = 100; k < 70000; k *= 2.3) {
          const auto time = [&](double mm, double nn, double kk) {
            return model.gemm_time_s(static_cast<std::int64_t>(mm), static_cast<std::int64_t>(nn),
                                     static_cast<std::int64_t>(kk), precision);
          };
          const double base = time(m, n, k);
          // (1e-12: rounding where the time is flat, e.g. below the smallest m)
          EXPECT_LE(base, time(m * 1.19 + 1, n, k) * (1 + 1e-12)) << m << " " << n << " " << k;
          EXPECT_LE(base, time(m, n * 1.07 + 1, k) * (1 + 1e-12)) << m << " " << n << " " << k;
          EXPECT_LE(base, time(m, n, k * 1.07 + 1) * (1 + 1e-12)) << m << " " << n << " " << k;
        }
      }
    }
  }
}

TEST_F(CalibratedH100, Fp8IsFasterOnLargeGemms) {
  for (const auto& [m, n, k] : {std::tuple{8192, 8192, 8192}, std::tuple{4096, 14336, 4096},
                                std::tuple{16384, 6144, 6144}, std::tuple{2048, 28672, 8192}}) {
    EXPECT_LT(model.gemm_time_s(m, n, k, kFp8), 0.8 * model.gemm_time_s(m, n, k, kBf16))
        << m << "×" << n << "×" << k;
  }
}

TEST_F(CalibratedH100, BeyondTheTableSmallMFloorsAndLargeShapesHoldTheirEfficiency) {
  EXPECT_DOUBLE_EQ(model.gemm_time_s(8, 4096, 4096, kBf16),
                   model.gemm_time_s(64, 4096, 4096, kBf16));
  EXPECT_NEAR(model.gemm_efficiency(65536, 8192, 8192, kBf16),
              model.gemm_efficiency(16384, 8192, 8192, kBf16), 1e-12);
  // No GEMM is faster than the launch floor.
  EXPECT_DOUBLE_EQ(model.gemm_time_s(1, 64, 64, kBf16), kMinComputeKernelTime_s);
}

TEST_F(CalibratedH100, ZeroSizedWorkCostsNothing) {
  EXPECT_EQ(model.gemm_time_s(0, 4096, 4096, kBf16), 0.0);
  EXPECT_EQ(model.gemm_efficiency(4096, 0, 4096, kBf16), 0.0);
  EXPECT_EQ(model.grouped_gemm_time_s(8, 0, 4096, 4096, kBf16), 0.0);
  EXPECT_EQ(model.grouped_gemm_time_s(0, 128, 4096, 4096, kBf16), 0.0);
  EXPECT_EQ(model.memory_bound_time_s(0), 0.0);
  EXPECT_EQ(model.attention_forward_time_s({1, 32, 8, 0, 4096, 128, 128, false}), 0.0);
}

TEST_F(CalibratedH100, GroupedGemmOverlapsSmallGroupsUpToTheStreams) {
  // One group is one GEMM.
  EXPECT_DOUBLE_EQ(model.grouped_gemm_time_s(1, 512, 4096, 7168, kBf16),
                   model.gemm_time_s(512, 4096, 7168, kBf16));
  // Groups that fill the GPU (1024×4096 is 8×16 = 128 tiles of 128×256 on 132 SMs) run one after
  // another, as Transformer Engine's per-group cuBLAS calls do, though one GEMM of all their rows
  // would be faster.
  EXPECT_DOUBLE_EQ(model.grouped_gemm_time_s(8, 1024, 4096, 7168, kBf16),
                   8 * model.gemm_time_s(1024, 4096, 7168, kBf16));
  EXPECT_LT(model.gemm_time_s(8 * 1024, 4096, 7168, kBf16),
            8 * model.gemm_time_s(1024, 4096, 7168, kBf16));
  // Groups of a quarter of the SMs (256×4096: 32 tiles) overlap, but here their own weights
  // (8 × 58.7 MB) take longer to stream than four at a time would.
  EXPECT_GT(model.grouped_gemm_time_s(8, 256, 4096, 7168, kBf16),
            2 * model.gemm_time_s(256, 4096, 7168, kBf16));
  EXPECT_LT(model.grouped_gemm_time_s(8, 256, 4096, 7168, kBf16),
            8 * model.gemm_time_s(256, 4096, 7168, kBf16));
  // Small groups stream one weight matrix each: 32 × 2·4096·7168 bytes at the calibrated
  // 3124 GB/s, well above one GEMM of all their rows.
  const double weights_s = 32 * (2.0 * (128 * 7168 + 7168 * 4096) + 2.0 * 128 * 4096) / 3124e9;
  EXPECT_DOUBLE_EQ(model.grouped_gemm_time_s(32, 128, 4096, 7168, kBf16), weights_s);
  EXPECT_GT(weights_s, 1.5 * model.gemm_time_s(32 * 128, 4096, 7168, kBf16));
  // Tiny groups share waves: much faster than one by one (torch._grouped_mm on an H100: 3.4× for
  // 64 groups of 64×1024×2048), and never slower for any size.
  EXPECT_LT(model.grouped_gemm_time_s(64, 64, 1024, 2048, kBf16),
            64 * model.gemm_time_s(64, 1024, 2048, kBf16) / 2);
  for (std::int64_t m = 1; m < 20000; m = m * 5 / 4 + 1) {
    EXPECT_LE(model.grouped_gemm_time_s(32, m, 4096, 7168, kBf16),
              32 * model.gemm_time_s(m, 4096, 7168, kBf16))
        << m;
  }
  // Time grows with the tokens per expert and with the number of experts.
  for (const std::int64_t groups : {4, 16, 64}) {
    double previous = 0;
    for (std::int64_t m = 1; m < 20000; m = m * 5 / 4 + 1) {
      const double time = model.grouped_gemm_time_s(groups, m, 2816, 2048, kBf16);
      EXPECT_GE(time, previous) << groups << " groups of " << m;
      EXPECT_LE(time, model.grouped_gemm_time_s(groups + 1, m, 2816, 2048, kBf16))
          << groups << " groups of " << m;
      previous = time;
    }
  }
}

TEST(ComputeCostModel, AccumulatingIntoFp32BoundsSmallInnerWeightGradientsWithoutATable) {
  const GpuSpec gpu = gpu_of("dgx-h100");
  GpuCalibration table = *builtin_calibration(gpu.name);
  table.gemm_bf16_accumulate_fp32.clear();
  const ComputeCostModel model(gpu, table);
  // A fine-grained expert's weight gradient: [6144, 2048] from 512 rows. Into fp32 main_grad the
  // output is read and written in fp32: 6144·2048·8 bytes plus the bf16 operands, at 3124 GB/s.
  const double bytes = 6144.0 * 2048 * 8 + 2.0 * (6144.0 * 512 + 512.0 * 2048);
  EXPECT_DOUBLE_EQ(model.gemm_time_s(6144, 2048, 512, kBf16, GemmOutput::fp32_accumulate),
                   bytes / 3124e9);
  EXPECT_LT(model.gemm_time_s(6144, 2048, 512, kBf16), bytes / 3124e9);
  // The same holds for each group of a grouped GEMM too large to overlap (384 tiles).
  EXPECT_DOUBLE_EQ(
      model.grouped_gemm_time_s(8, 6144, 2048, 512, kBf16, GemmOutput::fp32_accumulate),
      8 * bytes / 3124e9);
  // A deep inner dimension stays compute-bound: accumulating costs nothing extra.
  EXPECT_DOUBLE_EQ(model.gemm_time_s(6144, 2048, 8192, kBf16, GemmOutput::fp32_accumulate),
                   model.gemm_time_s(6144, 2048, 8192, kBf16));
}

TEST(ComputeCostModel, AnAccumulatingGemmIsNeverFasterThanItsBf16OutputTwin) {
  const GpuSpec h100 = gpu_of("dgx-h100");
  GpuCalibration calibration = *builtin_calibration(h100.name);
  // A table claiming every accumulating shape 20% faster than with a bf16 output (clock noise).
  calibration.gemm_bf16_accumulate_fp32.clear();
  for (GemmMeasurement point : calibration.gemm_bf16) {
    point.tflops *= 1.2;
    calibration.gemm_bf16_accumulate_fp32.push_back(point);
  }
  const ComputeCostModel run(h100, calibration, kDefaultAttentionBackend,
                             GemmKernels::foldplan_runtime);
  for (const auto& [m, n, k] : {std::tuple(4096, 28672, 4096), std::tuple(4096, 4096, 4096)}) {
    EXPECT_DOUBLE_EQ(run.gemm_time_s(m, n, k, kBf16, GemmOutput::fp32_accumulate),
                     run.gemm_time_s(m, n, k, kBf16))
        << m << "x" << n << "x" << k;
  }
}

TEST(ComputeCostModel, RunsMemoryBoundOpsArePricedAtItsStreamKernelsBandwidth) {
  const GpuSpec h100 = gpu_of("dgx-h100");
  GpuCalibration calibration = *builtin_calibration(h100.name);
  calibration.elementwise_Bps = 3.0e12;
  calibration.stream_Bps = 2.5e12;
  const ComputeCostModel megatron(h100, calibration);
  const ComputeCostModel run(h100, calibration, kDefaultAttentionBackend,
                             GemmKernels::foldplan_runtime);
  // 1 GB in one kernel: its launch plus the bytes at the op's bandwidth.
  EXPECT_DOUBLE_EQ(megatron.memory_bound_time_s(1e9), kStreamingKernelLatency_s + 1e9 / 3.0e12);
  EXPECT_DOUBLE_EQ(run.memory_bound_time_s(1e9), kStreamingKernelLatency_s + 1e9 / 2.5e12);
  // Not measured: run falls back to the elementwise figure.
  calibration.stream_Bps = 0;
  const ComputeCostModel unmeasured(h100, calibration, kDefaultAttentionBackend,
                                    GemmKernels::foldplan_runtime);
  EXPECT_DOUBLE_EQ(unmeasured.memory_bound_time_s(1e9), kStreamingKernelLatency_s + 1e9 / 3.0e12);
}

TEST(ComputeCostModel, AMeasuredAccumulatingTablePricesFp32AccumulateGemms) {
  const GpuSpec h100 = gpu_of("dgx-h100");
  GpuCalibration calibration = *builtin_calibration(h100.name);
  calibration.gemm_bf16_accumulate_fp32.clear();
  const ComputeCostModel without(h100, calibration);
  // Every shape measured 25% slower when adding into fp32 than with a bf16 output.
  for (GemmMeasurement point : calibration.gemm_bf16) {
    point.tflops *= 0.8;
    calibration.gemm_bf16_accumulate_fp32.push_back(point);
  }
  const ComputeCostModel with(h100, calibration, kDefaultAttentionBackend,
                              GemmKernels::foldplan_runtime);
  // Megatron's weight gradients (Transformer Engine's cublasLt calls) were not what the table
  // measured: they keep the bf16 table with the fp32 streaming bound.
  const ComputeCostModel megatron(h100, calibration);
  for (const auto& [m, n, k] :
       {std::tuple(4096, 4096, 4096), std::tuple(4096, 14336, 1024), std::tuple(64, 14336, 4096)}) {
    EXPECT_DOUBLE_EQ(megatron.gemm_time_s(m, n, k, kBf16, GemmOutput::fp32_accumulate),
                     without.gemm_time_s(m, n, k, kBf16, GemmOutput::fp32_accumulate));
  }
  // 4096³ (compute-bound): the table's point, 2·4096³ / (0.8 × its bf16 TFLOP/s).
  const GemmMeasurement& cube = find_point(calibration.gemm_bf16, 4096, 4096, 4096);
  const double cube_s = 2.0 * 4096.0 * 4096 * 4096 / (0.8 * cube.tflops * 1e12);
  EXPECT_NEAR(with.gemm_time_s(4096, 4096, 4096, kBf16, GemmOutput::fp32_accumulate), cube_s,
              cube_s * 1e-9);
  // Without the table accumulating there costs what the bf16 output does (compute-bound).
  EXPECT_DOUBLE_EQ(without.gemm_time_s(4096, 4096, 4096, kBf16, GemmOutput::fp32_accumulate),
                   without.gemm_time_s(4096, 4096, 4096, kBf16));
  // A bf16 output and fp8 are untouched by the table.
  EXPECT_DOUBLE_EQ(with.gemm_time_s(4096, 4096, 4096, kBf16),
                   without.gemm_time_s(4096, 4096, 4096, kBf16));
  EXPECT_DOUBLE_EQ(with.gemm_time_s(4096, 4096, 4096, kFp8, GemmOutput::fp32_accumulate),
                   without.gemm_time_s(4096, 4096, 4096, kFp8, GemmOutput::fp32_accumulate));
  // The fp32 output's streaming bound still holds where the table would be faster: 6144×2048
  // from 512 rows moves 6144·2048·8 bytes of fp32 plus its bf16 operands at 3124 GB/s.
  const double bytes = 6144.0 * 2048 * 8 + 2.0 * (6144.0 * 512 + 512.0 * 2048);
  EXPECT_GE(with.gemm_time_s(6144, 2048, 512, kBf16, GemmOutput::fp32_accumulate), bytes / 3124e9);
  // A grouped GEMM's groups one by one use it too (8 groups of 4096 rows: 256 tiles each, too
  // many to overlap).
  EXPECT_NEAR(with.grouped_gemm_time_s(8, 4096, 4096, 4096, kBf16, GemmOutput::fp32_accumulate),
              8 * cube_s, 8 * cube_s * 1e-9);
}

TEST_F(CalibratedH100, AttentionReproducesTheMeasuredPoint) {
  // 32 query heads over 8 KV heads, seq 4096, d 128: 418.6 / 326.1 TFLOP/s in the table.
  const AttentionShape shape = {1, 32, 8, 4096, 4096, 128, 128, true};
  const double forward_flops = 4.0 * 32 * 4096.0 * 4096 * 128 / 2;
  EXPECT_NEAR(forward_flops / model.attention_forward_time_s(shape) / 1e12, 418.6, 418.6 * 0.01);
  EXPECT_NEAR(2.5 * forward_flops / model.attention_backward_time_s(shape) / 1e12, 326.1,
              326.1 * 0.01);
}

TEST_F(CalibratedH100, AttentionBackwardTakesLongerThanForward) {
  for (const std::int64_t heads : {1, 4, 8, 32, 128}) {
    for (const std::int64_t seq : {128, 512, 1024, 4096, 8192, 32768, 131072}) {
      for (const bool causal : {true, false}) {
        const AttentionShape shape = {1, heads, 1, seq, seq, 128, 128, causal};
        EXPECT_GT(model.attention_backward_time_s(shape), model.attention_forward_time_s(shape))
            << heads << " heads, seq " << seq;
      }
    }
  }
}

TEST_F(CalibratedH100, AttentionTimeGrowsWithSeqAndHeads) {
  // Exactly from the smallest measured seq (1024) up; below it the physical model's ratio, taken
  // at the actual number of heads, can dip by up to 2% across a measured head count.
  for (std::int64_t heads = 1; heads < 300; heads += heads < 70 ? 1 : 7) {
    for (double seq = 64; seq < 200000; seq *= 1.05) {
      const auto s = static_cast<std::int64_t>(seq);
      const auto longer = static_cast<std::int64_t>(seq * 1.05) + 1;
      // (1e-12: rounding where the time is flat, e.g. a few heads bound by the longest block)
      const double tolerance = s >= 1024 ? 1 + 1e-12 : 1.02;
      const AttentionShape shape = {1, heads, 1, s, s, 128, 128, true};
      const AttentionShape longer_shape = {1, heads, 1, longer, longer, 128, 128, true};
      const AttentionShape more_heads = {1, heads + 1, 1, s, s, 128, 128, true};
      EXPECT_LE(model.attention_forward_time_s(shape),
                model.attention_forward_time_s(longer_shape) * tolerance)
          << heads << " " << s;
      EXPECT_LE(model.attention_backward_time_s(shape),
                model.attention_backward_time_s(longer_shape) * tolerance)
          << heads << " " << s;
      EXPECT_LE(model.attention_forward_time_s(shape),
                model.attention_forward_time_s(more_heads) * tolerance)
          << heads << " " << s;
      EXPECT_LE(model.attention_backward_time_s(shape),
                model.attention_backward_time_s(more_heads) * tolerance)
          << heads << " " << s;
    }
  }
}

TEST_F(CalibratedH100, AttentionScalesWithHeadDims) {
  // The table measured d = 128; other dims change the FLOPs, not the efficiency. (An H100 probe
  // ran qk 192 / v 128 at 590 / 420 TFLOP/s against 596 / 441 for d = 128, 128 heads.)
  const AttentionShape d128 = {1, 128, 128, 4096, 4096, 128, 128, true};
  const AttentionShape mla = {1, 128, 128, 4096, 4096, 192, 128, true};
  EXPECT_NEAR(model.attention_forward_time_s(mla) / model.attention_forward_time_s(d128),
              (192.0 + 128) / (128 + 128), 1e-9);
  EXPECT_NEAR(model.attention_backward_time_s(mla) / model.attention_backward_time_s(d128),
              (3 * 192.0 + 2 * 128) / (5 * 128), 1e-9);
}

TEST_F(CalibratedH100, ContextParallelBlocksArePriced) {
  // CP = 4 over a causal 16384: a rank's query chunk of 4096 against one key chunk of 4096, a
  // full block — twice the FLOPs of the diagonal (causal) block, a little less than twice the time
  // (no triangle to balance).
  const AttentionShape full = {1, 32, 8, 4096, 4096, 128, 128, false};
  const AttentionShape diagonal = {1, 32, 8, 4096, 4096, 128, 128, true};
  const double ratio =
      model.attention_forward_time_s(full) / model.attention_forward_time_s(diagonal);
  EXPECT_GT(ratio, 1.5);
  EXPECT_LT(ratio, 2.0);
  // Keys longer than queries (a causal block bottom-right aligned) cost more than the square.
  const AttentionShape wide = {1, 32, 8, 4096, 8192, 128, 128, true};
  EXPECT_GT(model.attention_forward_time_s(wide), model.attention_forward_time_s(full));
}

struct ErrorSummary {
  double median = 0;
  double within_25_percent = 0; // fraction of points
};

// How far the uncalibrated model's GEMM times are from a measured table.
ErrorSummary physical_model_error(const GpuSpec& gpu, const std::vector<GemmMeasurement>& points,
                                  GemmPrecision precision) {
  const ComputeCostModel physical(gpu, std::nullopt);
  std::vector<double> errors;
  for (const GemmMeasurement& point : points) {
    const double modelled = physical.gemm_time_s(point.m, point.n, point.k, precision);
    errors.push_back(std::fabs(modelled / measured_time_s(point) - 1));
  }
  std::sort(errors.begin(), errors.end());
  const auto within = std::lower_bound(errors.begin(), errors.end(), 0.25) - errors.begin();
  return {errors[errors.size() / 2],
          static_cast<double>(within) / static_cast<double>(errors.size())};
}

// Gates re-baselined when the calibration was normalised to the training-load SM clock
// (2026-11-23): the clock is read just after each point, which scatters short points; before,
// against the raw sweep, they were 95% (bf16) and 90% (fp8, H200) within 25%.
TEST(ComputeCostModel, PhysicalGemmsAreWithinAQuarterOfTheH100Table) {
  const GpuSpec h100 = gpu_of("dgx-h100");
  const GpuCalibration table = *builtin_calibration(h100.name);
  const ErrorSummary bf16 = physical_model_error(h100, table.gemm_bf16, kBf16);
  EXPECT_LE(bf16.median, 0.10);
  EXPECT_GE(bf16.within_25_percent, 0.91);
  const ErrorSummary fp8 = physical_model_error(h100, table.gemm_fp8, kFp8);
  EXPECT_LE(fp8.median, 0.12);
  EXPECT_GE(fp8.within_25_percent, 0.86);
  // The shapes that matter for dense and MoE layers, each within 25%.
  const ComputeCostModel physical(h100, std::nullopt);
  for (const auto& [m, n, k] :
       {std::tuple{8192, 8192, 8192}, std::tuple{4096, 14336, 4096}, std::tuple{512, 14336, 4096},
        std::tuple{128, 2048, 8192}, std::tuple{1024, 1024, 1024}, std::tuple{64, 4096, 4096}}) {
    const GemmMeasurement& point = find_point(table.gemm_bf16, m, n, k);
    EXPECT_NEAR(physical.gemm_time_s(m, n, k, kBf16) / measured_time_s(point), 1.0, 0.25)
        << m << "×" << n << "×" << k;
  }
}

TEST(ComputeCostModel, PhysicalGemmsAlsoFitTheH200TableTheyWereNotShapedOn) {
  const GpuSpec h200 = gpu_of("dgx-h200");
  const GpuCalibration table = *builtin_calibration(h200.name);
  const ErrorSummary bf16 = physical_model_error(h200, table.gemm_bf16, kBf16);
  EXPECT_LE(bf16.median, 0.10);
  EXPECT_GE(bf16.within_25_percent, 0.86);
}

TEST(ComputeCostModel, AnotherGpusCalibrationIsRefused) {
  const GpuSpec h200 = gpu_of("dgx-h200");
  try {
    ComputeCostModel(h200, builtin_calibration("H100-SXM5-80GB"));
    FAIL() << "expected an InputError";
  } catch (const InputError& error) {
    EXPECT_STREQ(
        error.what(),
        "calibration.gpu: \"H100-SXM5-80GB\" is not the cluster's GPU \"H200-SXM5-141GB\"");
  }
}

TEST(ComputeCostModel, CalibratedH200ReproducesItsOwnTable) {
  const GpuSpec h200 = gpu_of("dgx-h200");
  const ComputeCostModel model(h200, builtin_calibration(h200.name));
  EXPECT_NEAR(model.gemm_efficiency(8192, 8192, 8192, kBf16) * 989.5, 673, 673 * 0.01);
  EXPECT_NEAR(model.gemm_efficiency(4096, 4096, 4096, kBf16) * 989.5, 667, 667 * 0.01);
  EXPECT_NEAR(model.streaming_Bps(), 4450e9, 1e9);
}

TEST(ComputeCostModel, PhysicalA100LargeGemmByHand) {
  const ComputeCostModel a100(gpu_of("dgx-a100"), std::nullopt);
  // ≈ 2·8192³ / (312e12 · 0.70), times the last wave's idle SMs and the per-tile fixed cost:
  // 19 waves of 108 tiles for 2048, each tile doing 8192 + 128 k steps.
  const double ceiling_s = 2.0 * 8192 * 8192 * 8192 / (312e12 * kGemmPeakFractionBf16);
  const double by_hand_s = ceiling_s * (19.0 * 108 / 2048) * ((8192.0 + 128) / 8192);
  EXPECT_NEAR(a100.gemm_time_s(8192, 8192, 8192, kBf16), by_hand_s, 1e-9 * by_hand_s);
  EXPECT_NEAR(a100.gemm_efficiency(8192, 8192, 8192, kBf16), 0.688, 0.001);
}

TEST(ComputeCostModel, Fp8OnAGpuWithoutFp8IsAProgrammingError) {
  const ComputeCostModel a100(gpu_of("dgx-a100"), std::nullopt);
  EXPECT_FALSE(a100.supports(kFp8));
  EXPECT_TRUE(a100.supports(kBf16));
  EXPECT_THROW(a100.gemm_time_s(4096, 4096, 4096, kFp8), std::logic_error);
}

TEST(ComputeCostModel, MemoryBoundKernelsByHand) {
  const GpuSpec h100 = gpu_of("dgx-h100");
  // Calibrated: the measured elementwise kernel, 3124 GB/s, plus the per-kernel latency.
  const ComputeCostModel calibrated(h100, builtin_calibration(h100.name));
  EXPECT_DOUBLE_EQ(calibrated.memory_bound_time_s(1e9), 1.3e-6 + 1e9 / 3124e9);
  // Physical: 0.90 of the datasheet's 2.039 TB/s on an A100.
  const ComputeCostModel a100(gpu_of("dgx-a100"), std::nullopt);
  EXPECT_DOUBLE_EQ(a100.memory_bound_time_s(1e9), 1.3e-6 + 1e9 / (2.039e12 * 0.90));
  // A tiny kernel costs its latency.
  EXPECT_NEAR(a100.memory_bound_time_s(1024), 1.3e-6, 1e-9);
}

TEST(ComputeCostModel, MissingPartsOfACalibrationFallBackToThePhysicalModel) {
  const GpuSpec h100 = gpu_of("dgx-h100");
  GpuCalibration partial = *builtin_calibration(h100.name);
  partial.attention.clear();
  partial.gemm_fp8.clear();
  const ComputeCostModel model(h100, partial);
  const ComputeCostModel physical(h100, std::nullopt);
  const AttentionShape shape = {1, 32, 8, 4096, 4096, 128, 128, true};
  EXPECT_TRUE(model.calibrated());
  EXPECT_DOUBLE_EQ(model.attention_forward_time_s(shape), physical.attention_forward_time_s(shape));
  EXPECT_DOUBLE_EQ(model.gemm_time_s(4096, 4096, 4096, kFp8),
                   physical.gemm_time_s(4096, 4096, 4096, kFp8));
  EXPECT_NE(model.gemm_time_s(4096, 4096, 4096, kBf16),
            physical.gemm_time_s(4096, 4096, 4096, kBf16));
}

TEST(ComputeCostModel, UncalibratedGpusGetSensibleNumbers) {
  // GB200 (B200: 2500 TFLOP/s bf16, 8 TB/s, 148 SMs) has no table: large GEMMs near the ceiling,
  // a small MoE expert GEMM far below it, attention below its ceiling.
  const ComputeCostModel gb200(gpu_of("gb200-nvl72"), std::nullopt);
  EXPECT_NEAR(gb200.gemm_efficiency(8192, 8192, 8192, kBf16), kGemmPeakFractionBf16, 0.05);
  EXPECT_LT(gb200.gemm_efficiency(128, 2048, 7168, kBf16), 0.4);
  const double attention =
      gb200.attention_efficiency({1, 32, 8, 8192, 8192, 128, 128, true}, false);
  EXPECT_GT(attention, 0.4);
  EXPECT_LE(attention, kAttentionForwardPeakFraction);
}

} // namespace
} // namespace foldplan
