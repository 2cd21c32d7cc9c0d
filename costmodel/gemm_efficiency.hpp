// GEMM efficiency (achieved FLOP/s over the GPU's dense peak for the dtype), by shape: a physical
// model from the datasheet for any GPU, and a table measured on one GPU that corrects it.
//
// The physical model prices a GEMM the way a Hopper cuBLAS/CUTLASS kernel runs it: the output is
// cut into tiles, one tile per SM at a time; tiles run in waves over the SMs (the last wave may
// be partly idle); when there are too few tiles to fill the SMs, k is split across CTAs
// (split-K, partial sums in fp32 through memory); each tile pays a fixed cost (pipeline fill,
// epilogue); and nothing is faster than streaming the operands from HBM once. Across the 531 bf16
// shapes of the H100 table (compute-bound points normalised down to the training-load clock) its
// time is within 25% for 92% of points (median 8%; 96% and 9% on the raw sweep the overhead and
// split-K limit below were chosen on); see tests/costmodel/compute_cost_test.cpp.
#pragma once

#include <cstdint>
#include <span>

#include "costmodel/log_grid.hpp"
#include "topologies/cluster_spec.hpp"
#include "topologies/gpu_calibration.hpp"

namespace foldplan {

enum class GemmPrecision { bf16, fp8 };
// Where a GEMM's result goes: a bf16 tensor, or (weight gradients under Megatron's
// gradient-accumulation fusion) added into the fp32 main_grad buffer, read and written.
enum class GemmOutput { bf16, fp32_accumulate };

// The large-GEMM ceiling, as a fraction of the datasheet dense peak: the median efficiency of the
// H100 sweep's GEMMs with m, n, k ≥ 4096 (topologies/calibration/h100.json; bf16: 93 shapes,
// median 0.698; fp8: 27 shapes, median 0.640). The table is normalised to the SM clock the H100
// holds under a training load, 1530 MHz (tools/measure/results/h100_step_clock.json), against the
// 1830 MHz behind the datasheet peak (989.5 TFLOP/s = 132 SMs × 4096 FLOP per clock × 1830 MHz):
// so these ceilings are what a training step sees (docs/measurements.md).
inline constexpr double kGemmPeakFractionBf16 = 0.70;
inline constexpr double kGemmPeakFractionFp8 = 0.64;
// Output tiles (rows × columns): 128×256 and 128×192, tile shapes of Hopper's warp-specialised
// GEMM kernels (CUTLASS sm90 configurations); the model takes whichever is faster.
inline constexpr std::int64_t kGemmTileRows = 128;
inline constexpr std::int64_t kGemmTileColumnsWide = 256;
inline constexpr std::int64_t kGemmTileColumnsNarrow = 192;
// Per-tile fixed cost (filling the load pipeline, the epilogue's store), as the time of this many
// more k steps at bf16 (an fp8 MMA does twice the k per cycle: twice as many fp8 steps). Chosen
// with the split-K limit below so that the model follows the H100 table's small-shape points
// (those with m·n too small to fill 132 SMs).
inline constexpr double kGemmTileOverheadBf16K = 128;
// The same overhead in k steps of `precision`.
double gemm_tile_overhead_k(const GpuSpec& gpu, GemmPrecision precision);
// Most k slices per output tile that the model considers, chosen with the tile overhead above: on
// the H100 table before its clock normalisation, limits of 4, 8 and 16 put 93%, 96% and 96% of the
// points within 25%.
inline constexpr std::int64_t kGemmMaxSplitK = 16;
// Split-K partial sums: each extra slice writes and reads back one fp32 value per output element.
inline constexpr double kSplitKPartialBytesPerElement = 8;
// Achievable fraction of the datasheet HBM bandwidth for streaming: the measured device-to-device
// copy over the datasheet (H100 3033 / 3350 GB/s = 0.905, H200 4297 / 4800 = 0.895;
// docs/measurements.md).
inline constexpr double kAchievableHbmFraction = 0.90;

// The dense peak FLOP/s of `gpu` for `precision` (0 for fp8 on a GPU without fp8 tensor cores).
double peak_flops(const GpuSpec& gpu, GemmPrecision precision);
// Bytes a GEMM must move at least once: both operands in `precision`, the output in bf16 (what
// Megatron/Transformer Engine write in both precisions).
double gemm_operand_bytes(double m, double n, double k, GemmPrecision precision);

// Datasheet-only GEMM time, without any per-launch floor (the caller adds one per kernel).
class PhysicalGemmModel {
public:
  explicit PhysicalGemmModel(const GpuSpec& gpu);
  // Requires m, n, k > 0 and a non-zero peak for `precision`.
  double time_s(double m, double n, double k, GemmPrecision precision) const;
  double efficiency(double m, double n, double k, GemmPrecision precision) const;

private:
  double bf16_flops_, fp8_flops_;
  double bf16_flops_per_sm_, fp8_flops_per_sm_;
  double bf16_tile_overhead_k_, fp8_tile_overhead_k_;
  double streaming_Bps_;
  double num_sms_;
};

// Efficiency measured on a grid of (m, n, k) for one precision, interpolated in log space
// (LogGrid). Beyond the measured range, larger shapes hold the edge's efficiency; smaller ones
// take the edge's time scaled by the physical model's tile structure, one factor per axis so that
// time stays monotone: the number of 128-row tiles in m (so below the smallest measured m, 64 on
// our tables, time floors: the tile and the weights it reads are the same), of 256-column tiles in
// n, and the per-tile work k + the tile overhead in k.
class GemmEfficiencyTable {
public:
  // `measurements` must not be empty, and the GPU's peak for `precision` positive.
  GemmEfficiencyTable(std::span<const GemmMeasurement> measurements, const GpuSpec& gpu,
                      GemmPrecision precision);
  double efficiency(double m, double n, double k) const;

private:
  LogGrid<3> grid_;
  double tile_overhead_k_;
};

} // namespace foldplan
