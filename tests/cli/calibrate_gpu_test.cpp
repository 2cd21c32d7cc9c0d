// `foldplan calibrate --quick` on a real GPU: the sweep runs and its numbers are those of the GPU
// at hand (H100 or H200 ranges). Skips without a GPU.
#include <algorithm>

#include <gtest/gtest.h>

#include "cli/calibration_file.hpp"
#include "tests/gpu_test_support.hpp"

namespace foldplan::cli {
namespace {

TEST(CalibrationSweepGpu, QuickSweepGivesSaneNumbers) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(1);
  const CalibrationRun run = runtime::run_calibration_sweep(calibration_grid(true), {});
  const std::optional<std::string> gpu = preset_gpu_name(run.device_name);
  if (!gpu || (*gpu != "H100-SXM5-80GB" && *gpu != "H200-SXM5-141GB"))
    GTEST_SKIP() << "the ranges below are an H100's or H200's, not a " << run.device_name << "'s";
  const GpuCalibration calibration = assemble_calibration(
      run, {.gpu = *gpu, .date = "2026-11-23", .command = "calibration_gpu_test"}, std::nullopt,
      "none");
  ASSERT_EQ(calibration.gemm_bf16.size(), 12u);
  ASSERT_EQ(calibration.gemm_bf16_accumulate_fp32.size(), 12u);
  const auto cube = [](const std::vector<GemmMeasurement>& points) {
    return std::find_if(points.begin(), points.end(),
                        [](const GemmMeasurement& point) {
                          return point.m == 4096 && point.n == 4096 && point.k == 4096;
                        })
        ->tflops;
  };
  EXPECT_GT(cube(calibration.gemm_bf16), 300);
  EXPECT_LT(cube(calibration.gemm_bf16), 1000);
  // Adding into fp32 costs 4096² fp32 reads and writes more: a little slower, same kernel class.
  EXPECT_GT(cube(calibration.gemm_bf16_accumulate_fp32), 250);
  EXPECT_LT(cube(calibration.gemm_bf16_accumulate_fp32), 1000);
  for (const GemmMeasurement& point : calibration.gemm_bf16) {
    EXPECT_GT(point.tflops, 1) << point.m << "x" << point.n << "x" << point.k;
    EXPECT_LT(point.tflops, 990) << point.m << "x" << point.n << "x" << point.k;
  }
  EXPECT_GT(calibration.copy_Bps, 1e12);
  EXPECT_LT(calibration.copy_Bps, 5e12);
  EXPECT_GT(calibration.stream_Bps, 1e12);
  EXPECT_LT(calibration.stream_Bps, calibration.copy_Bps * 1.1);
  ASSERT_EQ(calibration.attention.size(), 2u);
  for (const AttentionMeasurement& point : calibration.attention) {
    EXPECT_GT(point.fwd_tflops, 30) << point.seq;
    EXPECT_LT(point.fwd_tflops, 700) << point.seq;
    EXPECT_GT(point.bwd_tflops, 30) << point.seq;
    EXPECT_LT(point.bwd_tflops, 700) << point.seq;
  }
  // NVML answered: a load clock between idle and the 1980 MHz boost.
  EXPECT_GT(run.load_sm_mhz, 800);
  EXPECT_LE(run.load_sm_mhz, 1980);
  EXPECT_TRUE(run.collectives.empty());
}

} // namespace
} // namespace foldplan::cli
