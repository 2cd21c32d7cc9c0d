#include "costmodel/gemm_efficiency.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <limits>
#include <vector>

namespace foldplan {
namespace {

double operand_bytes(GemmPrecision precision) {
  return precision == GemmPrecision::fp8 ? 1.0 : 2.0;
}
constexpr double kOutputBytes = 2.0;

} // namespace

double peak_flops(const GpuSpec& gpu, GemmPrecision precision) {
  return precision == GemmPrecision::fp8 ? gpu.fp8_flops : gpu.bf16_flops;
}

double gemm_operand_bytes(double m, double n, double k, GemmPrecision precision) {
  return operand_bytes(precision) * (m * k + k * n) + kOutputBytes * m * n;
}

PhysicalGemmModel::PhysicalGemmModel(const GpuSpec& gpu)
    : bf16_flops_(gpu.bf16_flops), fp8_flops_(gpu.fp8_flops),
      bf16_flops_per_sm_(gpu.bf16_flops * kGemmPeakFractionBf16 / static_cast<double>(gpu.num_sms)),
      fp8_flops_per_sm_(gpu.fp8_flops * kGemmPeakFractionFp8 / static_cast<double>(gpu.num_sms)),
      bf16_tile_overhead_k_(gemm_tile_overhead_k(gpu, GemmPrecision::bf16)),
      fp8_tile_overhead_k_(gemm_tile_overhead_k(gpu, GemmPrecision::fp8)),
      streaming_Bps_(gpu.hbm_bw_Bps * kAchievableHbmFraction),
      num_sms_(static_cast<double>(gpu.num_sms)) {
  assert(gpu.num_sms > 0 && gpu.bf16_flops > 0 && gpu.hbm_bw_Bps > 0);
}

double gemm_tile_overhead_k(const GpuSpec& gpu, GemmPrecision precision) {
  return precision == GemmPrecision::fp8 ? kGemmTileOverheadBf16K * gpu.fp8_flops / gpu.bf16_flops
                                         : kGemmTileOverheadBf16K;
}

double PhysicalGemmModel::time_s(double m, double n, double k, GemmPrecision precision) const {
  assert(m > 0 && n > 0 && k > 0);
  const bool fp8 = precision == GemmPrecision::fp8;
  const double flops_per_sm = fp8 ? fp8_flops_per_sm_ : bf16_flops_per_sm_;
  assert(flops_per_sm > 0);
  const double tile_overhead_k = fp8 ? fp8_tile_overhead_k_ : bf16_tile_overhead_k_;
  const double operand_and_output_bytes = gemm_operand_bytes(m, n, k, precision);

  double best_s = std::numeric_limits<double>::infinity();
  for (const double tile_columns :
       {static_cast<double>(kGemmTileColumnsWide), static_cast<double>(kGemmTileColumnsNarrow)}) {
    const double tile_rows = static_cast<double>(kGemmTileRows);
    const double tiles = std::ceil(m / tile_rows) * std::ceil(n / tile_columns);
    for (std::int64_t split = 1; split <= kGemmMaxSplitK; ++split) {
      const double slices = static_cast<double>(split);
      // Tiles run in waves of one per SM; a tile's time is its MMA work plus the fixed cost.
      const double waves = std::ceil(tiles * slices / num_sms_);
      const double tile_time_s =
          2.0 * tile_rows * tile_columns * (k / slices + tile_overhead_k) / flops_per_sm;
      const double partial_bytes = split > 1 ? kSplitKPartialBytesPerElement * m * n * slices : 0;
      const double memory_time_s = (operand_and_output_bytes + partial_bytes) / streaming_Bps_;
      best_s = std::min(best_s, std::max(waves * tile_time_s, memory_time_s));
    }
  }
  return best_s;
}

double PhysicalGemmModel::efficiency(double m, double n, double k, GemmPrecision precision) const {
  const double peak = precision == GemmPrecision::fp8 ? fp8_flops_ : bf16_flops_;
  return 2.0 * m * n * k / (time_s(m, n, k, precision) * peak);
}

namespace {

std::vector<LogGrid<3>::Measurement> efficiency_points(std::span<const GemmMeasurement> points,
                                                       double peak) {
  std::vector<LogGrid<3>::Measurement> result;
  result.reserve(points.size());
  for (const GemmMeasurement& point : points) {
    result.push_back(
        {{static_cast<double>(point.m), static_cast<double>(point.n), static_cast<double>(point.k)},
         point.tflops * 1e12 / peak});
  }
  return result;
}

} // namespace

GemmEfficiencyTable::GemmEfficiencyTable(std::span<const GemmMeasurement> measurements,
                                         const GpuSpec& gpu, GemmPrecision precision)
    : grid_(efficiency_points(measurements, peak_flops(gpu, precision)), {1.0, 1.0, 1.0}),
      tile_overhead_k_(gemm_tile_overhead_k(gpu, precision)) {
  assert(!measurements.empty() && peak_flops(gpu, precision) > 0);
}

double GemmEfficiencyTable::efficiency(double m, double n, double k) const {
  const LogGrid<3>::Lookup lookup = grid_.at({m, n, k});
  // Time per unit of the axis below the measured range: tiles of m and n, per-tile work in k.
  const std::array<double (*)(double, double), 3> tile_work = {
      [](double rows, double) { return std::ceil(rows / static_cast<double>(kGemmTileRows)); },
      [](double columns, double) {
        return std::ceil(columns / static_cast<double>(kGemmTileColumnsWide));
      },
      [](double depth, double overhead_k) { return depth + overhead_k; }};
  const LogGrid<3>::Coordinates actual{m, n, k};
  double efficiency = lookup.efficiency;
  for (std::size_t d = 0; d < 3; ++d) {
    if (lookup.side[d] != LogGrid<3>::Side::below)
      continue;
    const double edge = lookup.clamped[d];
    // time = edge time · work(x) / work(edge), so efficiency scales by (x / edge) / that ratio.
    efficiency *= (actual[d] / edge) * tile_work[d](edge, tile_overhead_k_) /
                  tile_work[d](actual[d], tile_overhead_k_);
  }
  return efficiency;
}

} // namespace foldplan
