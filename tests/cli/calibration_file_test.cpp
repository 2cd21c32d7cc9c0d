// What `foldplan calibrate` measures and how its timings become a calibration file: the grid, the
// clock normalisation (to_calibration.py's clock_scale), the GPU names, the bus bandwidth and the
// merge with a base calibration. Host-only: runs in CI.
#include "cli/calibration_file.hpp"

#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "topologies/cluster_spec.hpp"

namespace foldplan::cli {
using runtime::CalibrationAttentionShape;
using runtime::TimedAttention;
using runtime::TimedCollective;
using runtime::TimedGemm;
namespace {

bool has_gemm(const CalibrationGrid& grid, std::int64_t m, std::int64_t n, std::int64_t k) {
  return std::find(grid.gemms.begin(), grid.gemms.end(), CalibrationGemmShape{m, n, k}) !=
         grid.gemms.end();
}

TEST(CalibrationGrid, IsTheShippedTablesGrid) {
  const CalibrationGrid grid = calibration_grid(false);
  EXPECT_EQ(grid.gemms.size(), 531u); // 9 m × 59 (n, k)
  std::set<std::pair<std::int64_t, std::int64_t>> pairs;
  std::set<std::int64_t> rows;
  for (const CalibrationGemmShape& shape : grid.gemms) {
    pairs.emplace(shape.n, shape.k);
    rows.insert(shape.m);
  }
  EXPECT_EQ(pairs.size(), 59u);
  EXPECT_EQ(rows, (std::set<std::int64_t>{64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384}));
  // Small-m expert GEMMs: Mixtral's up-projection (14336 × 4096) and down-projection at 64 rows.
  EXPECT_TRUE(has_gemm(grid, 64, 14336, 4096));
  EXPECT_TRUE(has_gemm(grid, 64, 4096, 14336));
  EXPECT_TRUE(has_gemm(grid, 16384, 4096, 49152));
  // The foldplan attention shapes of the H100 table: 2 kv_heads × 2 head dims × 5 lengths, and
  // one not causal.
  EXPECT_EQ(grid.attention.size(), 21u);
  EXPECT_EQ(std::count_if(grid.attention.begin(), grid.attention.end(),
                          [](const CalibrationAttentionShape& shape) { return !shape.causal; }),
            1);
  // 4 KiB … 1 GiB in steps of ×4.
  ASSERT_EQ(grid.collective_bytes.size(), 10u);
  EXPECT_EQ(grid.collective_bytes.front(), 4096.0);
  EXPECT_EQ(grid.collective_bytes.back(), 1024.0 * 1024 * 1024);
}

TEST(CalibrationGrid, QuickIsASmallSubsetWithTheCheckedShapes) {
  const CalibrationGrid full = calibration_grid(false);
  const CalibrationGrid quick = calibration_grid(true);
  EXPECT_EQ(quick.gemms.size(), 12u); // 3 m × 4 (n, k)
  EXPECT_TRUE(has_gemm(quick, 4096, 4096, 4096));
  EXPECT_TRUE(has_gemm(quick, 64, 14336, 4096));
  for (const CalibrationGemmShape& shape : quick.gemms)
    EXPECT_TRUE(has_gemm(full, shape.m, shape.n, shape.k));
  EXPECT_EQ(quick.attention.size(), 2u);
  EXPECT_EQ(quick.collective_bytes.size(), 3u);
}

TEST(CalibrationClock, ScalesComputeBoundPointsDownToTheLoadClockOnly) {
  // Measured at 1980 MHz, the training load holds 1530: × 1530 / 1980.
  EXPECT_DOUBLE_EQ(clock_scale(1980, 1530), 1530.0 / 1980.0);
  // At or below the load clock the point already ran power-limited: kept, never scaled up.
  EXPECT_DOUBLE_EQ(clock_scale(1530, 1530), 1.0);
  EXPECT_DOUBLE_EQ(clock_scale(1410, 1530), 1.0);
  // Unknown clocks: kept.
  EXPECT_DOUBLE_EQ(clock_scale(0, 1530), 1.0);
  EXPECT_DOUBLE_EQ(clock_scale(1980, 0), 1.0);
  // Below the ridge point (HBM-bound): kept; above it: scaled.
  EXPECT_DOUBLE_EQ(clock_scale(1980, 1530, 62.7, 228.3), 1.0);
  EXPECT_DOUBLE_EQ(clock_scale(1980, 1530, 1365.3, 228.3), 1530.0 / 1980.0);
}

TEST(CalibrationClock, IntensityAndRidgeByHand) {
  // 4096³: 2·4096³ FLOP over 3 bf16 matrices of 4096² = 4096 / 3 FLOP per byte.
  EXPECT_DOUBLE_EQ(gemm_intensity({4096, 4096, 4096}), 4096.0 / 3);
  // 64 rows of Mixtral's up-projection: 2·64·14336·4096 / (2·(64·4096 + 4096·14336) + 2·64·14336).
  EXPECT_DOUBLE_EQ(gemm_intensity({64, 14336, 4096}),
                   2.0 * 64 * 14336 * 4096 / (2.0 * (64 * 4096 + 4096 * 14336) + 2.0 * 64 * 14336));
  // Accumulating reads and writes an fp32 C: 8 bytes per output element.
  EXPECT_DOUBLE_EQ(gemm_intensity({4096, 4096, 4096}, 8), 2.0 * 4096 / 12);
  // H100: 989.5 TFLOP/s at 1530 of 1980 MHz over 3.35 TB/s.
  const GpuSpec h100 = load_cluster("dgx-h100").gpu;
  EXPECT_DOUBLE_EQ(bf16_ridge_point(h100, 1530, 1980), h100.bf16_flops * 1530 / 1980 / 3.35e12);
  EXPECT_DOUBLE_EQ(bf16_ridge_point(h100, 0, 0), h100.bf16_flops / 3.35e12);
}

TEST(CalibrationNames, CudaDeviceNamesMapToThePresetsGpus) {
  EXPECT_EQ(preset_gpu_name("NVIDIA H100 80GB HBM3"), "H100-SXM5-80GB");
  EXPECT_EQ(preset_gpu_name("NVIDIA H200"), "H200-SXM5-141GB");
  EXPECT_EQ(preset_gpu_name("NVIDIA H100 PCIe"), std::nullopt); // another board
  EXPECT_EQ(preset_gpu_name("NVIDIA GeForce RTX 4090"), std::nullopt);
  // Every name it gives is a preset's.
  for (const char* device : {"NVIDIA H100 80GB HBM3", "NVIDIA H200", "NVIDIA H800",
                             "NVIDIA A100-SXM4-80GB", "NVIDIA GB200"}) {
    EXPECT_NO_THROW(preset_gpu(*preset_gpu_name(device), "--gpu")) << device;
  }
  try {
    preset_gpu("H999", "--gpu");
    FAIL() << "no preset has H999";
  } catch (const InputError& error) {
    EXPECT_EQ(std::string(error.what()),
              "--gpu: \"H999\" is not the GPU of any cluster preset (A100-SXM4-80GB, "
              "B200-in-GB200-186GB, H100-SXM5-80GB, H200-SXM5-141GB, H800-SXM5-80GB)");
  }
}

TEST(CalibrationBusBandwidth, IsNcclTestsFactors) {
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor("all_reduce", 8), 1.75);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor("all_reduce", 2), 1.0);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor("all_gather", 8), 0.875);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor("reduce_scatter", 4), 0.75);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor("all_to_all", 2), 0.5);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor("send_recv", 2), 1.0);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor("send_recv_bidirectional", 8), 1.0);
}

// One point of each kind, as the sweep would return them on an H100.
CalibrationRun small_run() {
  CalibrationRun run;
  run.device_name = "NVIDIA H100 80GB HBM3";
  run.software = "CUDA runtime 13.0.0, cuBLAS 13.1.0, NCCL 2.28.9, driver 580.159.04";
  run.load_sm_mhz = 1530;
  run.max_sm_mhz = 1980;
  run.gemm_bf16 = {{{4096, 4096, 4096}, 2e-4, 1980}, {{64, 14336, 4096}, 5e-5, 1980}};
  run.gemm_bf16_accumulate_fp32 = {{{4096, 4096, 4096}, 2.5e-4, 1800}};
  run.attention = {{.shape = {32, 8, 4096, 128, true},
                    .forward_s = 1e-3,
                    .backward_s = 3e-3,
                    .forward_sm_mhz = 1530,
                    .backward_sm_mhz = 1700}};
  run.copy_Bps = 3.0e12;
  run.stream_Bps = 2.8e12;
  return run;
}

const CalibrationSource kSource = {
    .gpu = "H100-SXM5-80GB", .date = "2026-11-23", .command = "foldplan calibrate -o h.json"};

TEST(CalibrationAssembly, TimingsBecomeNormalisedThroughput) {
  const GpuCalibration calibration =
      assemble_calibration(small_run(), kSource, std::nullopt, "none");
  EXPECT_EQ(calibration.gpu, "H100-SXM5-80GB");
  EXPECT_EQ(calibration.measured.device, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(calibration.measured.command, "foldplan calibrate -o h.json");
  ASSERT_EQ(calibration.gemm_bf16.size(), 2u);
  // 4096³ in 200 µs at 1980 MHz: 687.2 TFLOP/s, compute-bound, × 1530 / 1980.
  const double cube = 2.0 * 4096 * 4096 * 4096;
  EXPECT_DOUBLE_EQ(calibration.gemm_bf16[0].tflops, cube / 2e-4 / 1e12 * 1530 / 1980);
  // 64 rows (62.7 FLOP per byte, under the 228 ridge): HBM-bound, kept as measured.
  EXPECT_DOUBLE_EQ(calibration.gemm_bf16[1].tflops, 2.0 * 64 * 14336 * 4096 / 5e-5 / 1e12);
  // Accumulating, measured at 1800 MHz: × 1530 / 1800.
  ASSERT_EQ(calibration.gemm_bf16_accumulate_fp32.size(), 1u);
  EXPECT_DOUBLE_EQ(calibration.gemm_bf16_accumulate_fp32[0].tflops,
                   cube / 2.5e-4 / 1e12 * 1530 / 1800);
  // Attention: 4·32·4096²·128/2 FLOP forward (at the load clock: kept), 2.5× that backward.
  const double forward = 4.0 * 32 * 4096 * 4096 * 128 / 2;
  ASSERT_EQ(calibration.attention.size(), 1u);
  EXPECT_EQ(calibration.attention[0].backend, "foldplan");
  EXPECT_DOUBLE_EQ(calibration.attention[0].fwd_tflops, forward / 1e-3 / 1e12);
  EXPECT_DOUBLE_EQ(calibration.attention[0].bwd_tflops, 2.5 * forward / 3e-3 / 1e12 * 1530 / 1700);
  EXPECT_EQ(calibration.copy_Bps, 3.0e12);
  EXPECT_EQ(calibration.stream_Bps, 2.8e12);
  // No base to carry the three-reads-to-a-write figure from: the stream figure stands in.
  EXPECT_EQ(calibration.elementwise_Bps, 2.8e12);
  EXPECT_TRUE(calibration.gemm_fp8.empty());
  EXPECT_TRUE(calibration.collectives.empty());
  EXPECT_NE(calibration.measured.notes.find("one GPU: no collectives measured"), std::string::npos);
  EXPECT_NE(calibration.measured.notes.find("Carried nothing (--base none)"), std::string::npos);
  EXPECT_NE(calibration.measured.notes.find("Training-load SM clock 1530 MHz"), std::string::npos);

  // --raw keeps every point as measured; the notes say so.
  CalibrationSource raw = kSource;
  raw.raw = true;
  const GpuCalibration unscaled = assemble_calibration(small_run(), raw, std::nullopt, "none");
  EXPECT_DOUBLE_EQ(unscaled.gemm_bf16[0].tflops, cube / 2e-4 / 1e12);
  EXPECT_NE(unscaled.measured.notes.find("--raw"), std::string::npos);
}

TEST(CalibrationAssembly, CollectivesGetNcclTestsBusBandwidth) {
  CalibrationRun run = small_run();
  run.gpus = 8;
  run.collectives = {{"all_reduce", 8, 1048576, 2e-5}, {"send_recv", 2, 1048576, 1e-5}};
  const GpuCalibration calibration = assemble_calibration(run, kSource, std::nullopt, "none");
  ASSERT_EQ(calibration.collectives.size(), 2u);
  EXPECT_EQ(calibration.collectives[0].link, "nvlink");
  EXPECT_DOUBLE_EQ(calibration.collectives[0].busbw_Bps, 1048576 / 2e-5 * 1.75);
  EXPECT_DOUBLE_EQ(calibration.collectives[1].busbw_Bps, 1048576 / 1e-5);
  EXPECT_NE(calibration.measured.notes.find("NCCL on 8 GPUs"), std::string::npos);
}

TEST(CalibrationAssembly, TheBaseFillsWhatWasNotMeasuredAndOnlyThat) {
  const GpuCalibration base = *builtin_calibration("H100-SXM5-80GB");
  const GpuCalibration calibration =
      assemble_calibration(small_run(), kSource, base, "the shipped H100-SXM5-80GB calibration");
  // bf16: the 2 measured shapes replace the base's; its other 529 are carried.
  EXPECT_EQ(calibration.gemm_bf16.size(), 531u);
  const auto cube = std::find_if(calibration.gemm_bf16.begin(), calibration.gemm_bf16.end(),
                                 [](const GemmMeasurement& point) {
                                   return point.m == 4096 && point.n == 4096 && point.k == 4096;
                                 });
  EXPECT_DOUBLE_EQ(cube->tflops, 2.0 * 4096 * 4096 * 4096 / 2e-4 / 1e12 * 1530 / 1980);
  EXPECT_EQ(std::count_if(calibration.gemm_bf16.begin(), calibration.gemm_bf16.end(),
                          [](const GemmMeasurement& point) {
                            return point.m == 4096 && point.n == 4096 && point.k == 4096;
                          }),
            1);
  // The 1 measured accumulating shape replaces the base's; its other 530 are carried.
  EXPECT_EQ(calibration.gemm_bf16_accumulate_fp32.size(), 531u);
  // fp8 and the cuDNN attention points cannot be measured here: all carried.
  EXPECT_EQ(calibration.gemm_fp8, base.gemm_fp8);
  // 1 measured foldplan point replaces the base's; its other 20 foldplan and 36 cudnn carried.
  EXPECT_EQ(calibration.attention.size(), 57u);
  // The copy and the runtime's stream are measured; the elementwise figure (three reads to a
  // write, what Megatron's memory-bound ops are priced with) is the base's.
  EXPECT_EQ(calibration.copy_Bps, 3.0e12);
  EXPECT_EQ(calibration.stream_Bps, 2.8e12);
  EXPECT_EQ(calibration.elementwise_Bps, base.elementwise_Bps);
  EXPECT_NE(
      calibration.measured.notes.find("gemm.bf16 529, gemm.bf16_accumulate_fp32 530, gemm.fp8 "
                                      "225, attention 36 cudnn, 20 foldplan, collectives 0, "
                                      "memory.elementwise_Bps"),
      std::string::npos)
      << calibration.measured.notes;

  // A base of another GPU is refused, naming it.
  CalibrationSource h200 = kSource;
  h200.gpu = "H200-SXM5-141GB";
  try {
    assemble_calibration(small_run(), h200, base, "h100.json");
    FAIL() << "an H100 base for an H200";
  } catch (const InputError& error) {
    EXPECT_EQ(std::string(error.what()),
              "--base: h100.json is a calibration of H100-SXM5-80GB, not of H200-SXM5-141GB");
  }
}

TEST(CalibrationAssembly, AFailedTimingIsRefusedByTheValidator) {
  CalibrationRun run = small_run();
  run.copy_Bps = 0;
  EXPECT_THROW(assemble_calibration(run, kSource, std::nullopt, "none"), InputError);
}

} // namespace
} // namespace foldplan::cli
