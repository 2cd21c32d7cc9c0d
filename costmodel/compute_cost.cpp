#include "costmodel/compute_cost.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "core/units.hpp"

namespace foldplan {
namespace {

double as_double(std::int64_t value) {
  return static_cast<double>(value);
}

const char* precision_name(GemmPrecision precision) {
  return precision == GemmPrecision::fp8 ? "fp8" : "bf16";
}

// Bytes beyond the bf16 output that an fp32 accumulating GEMM moves: it reads the fp32 output and
// writes it back instead of writing bf16.
double accumulate_extra_bytes(double m, double n, GemmOutput output) {
  if (output == GemmOutput::bf16)
    return 0;
  return m * n * (2 * units::kFp32Bytes - units::kBf16Bytes);
}

std::optional<std::string> attention_fallback_note(const std::optional<GpuCalibration>& calibration,
                                                   const std::string& gpu_name,
                                                   const std::string& backend) {
  if (!calibration) {
    return fmt::format("attention predicted from the physical model: no calibration for {}",
                       gpu_name);
  }
  if (calibration->attention.empty()) {
    return fmt::format(
        "attention predicted from the physical model: the {} calibration has no attention points",
        gpu_name);
  }
  const std::string used = attention_table_backend(calibration->attention, backend);
  if (used == backend)
    return std::nullopt;
  return fmt::format("attention predicted from {} measurements: no {} points in the {} calibration",
                     used.empty() ? "every backend's" : used, backend, gpu_name);
}

} // namespace

ComputeCostModel::ComputeCostModel(const GpuSpec& gpu, std::optional<GpuCalibration> calibration,
                                   const std::string& attention_backend, GemmKernels gemm_kernels)
    : gpu_(gpu), physical_gemm_(gpu), physical_attention_(gpu),
      streaming_Bps_(gpu.hbm_bw_Bps * kAchievableHbmFraction), memory_bound_Bps_(streaming_Bps_) {
  attention_fallback_ = attention_fallback_note(calibration, gpu.name, attention_backend);
  if (!calibration)
    return;
  if (calibration->gpu != gpu.name) {
    throw InputError("calibration.gpu", fmt::format("\"{}\" is not the cluster's GPU \"{}\"",
                                                    calibration->gpu, gpu.name));
  }
  calibrated_ = true;
  if (!calibration->gemm_bf16.empty())
    gemm_bf16_.emplace(calibration->gemm_bf16, gpu, GemmPrecision::bf16);
  if (gemm_kernels == GemmKernels::foldplan_runtime &&
      !calibration->gemm_bf16_accumulate_fp32.empty()) {
    gemm_bf16_accumulate_fp32_.emplace(calibration->gemm_bf16_accumulate_fp32, gpu,
                                       GemmPrecision::bf16);
  }
  if (!calibration->gemm_fp8.empty() && gpu.fp8_flops > 0)
    gemm_fp8_.emplace(calibration->gemm_fp8, gpu, GemmPrecision::fp8);
  if (!calibration->attention.empty())
    attention_.emplace(calibration->attention, gpu.bf16_flops, attention_backend);
  streaming_Bps_ = calibration->elementwise_Bps;
  // `foldplan run`'s memory-bound ops are its own copy kernel, half read and half written; a
  // streaming elementwise kernel of three reads to a write (the elementwise figure) runs faster.
  memory_bound_Bps_ = gemm_kernels == GemmKernels::foldplan_runtime && calibration->stream_Bps > 0
                          ? calibration->stream_Bps
                          : streaming_Bps_;
}

bool ComputeCostModel::supports(GemmPrecision precision) const {
  return peak(precision) > 0;
}

double ComputeCostModel::peak(GemmPrecision precision) const {
  return peak_flops(gpu_, precision);
}

double ComputeCostModel::gemm_efficiency_of_shape(double m, double n, double k,
                                                  GemmPrecision precision) const {
  if (!supports(precision)) {
    throw std::logic_error(fmt::format("{} GEMM asked of {}, which has no {} tensor cores",
                                       precision_name(precision), gpu_.name,
                                       precision_name(precision)));
  }
  const std::optional<GemmEfficiencyTable>& table =
      precision == GemmPrecision::fp8 ? gemm_fp8_ : gemm_bf16_;
  if (table)
    return table->efficiency(m, n, k);
  return physical_gemm_.efficiency(m, n, k, precision);
}

double ComputeCostModel::streaming_time_s(double m, double n, double k, GemmPrecision precision,
                                          GemmOutput output) const {
  return (gemm_operand_bytes(m, n, k, precision) + accumulate_extra_bytes(m, n, output)) /
         streaming_Bps_;
}

double ComputeCostModel::unfloored_gemm_time_s(double m, double n, double k,
                                               GemmPrecision precision, GemmOutput output) const {
  // A bf16 GEMM accumulating into fp32 measured as such (`foldplan calibrate`): its own table,
  // which holds the fp32 C's read and write and the kernels cuBLAS picks for that output.
  const bool measured_accumulate = output == GemmOutput::fp32_accumulate &&
                                   precision == GemmPrecision::bf16 &&
                                   gemm_bf16_accumulate_fp32_.has_value();
  // Never faster than the same GEMM with a bf16 output: it does that work and reads and writes an
  // fp32 C besides. (In the shipped tables 35 of 531 points measured up to 29% faster, the two
  // timings of a shape being taken at different clocks; the clock, not the kernel, differed.)
  const double bf16_efficiency = gemm_efficiency_of_shape(m, n, k, precision);
  const double efficiency =
      measured_accumulate
          ? std::min(gemm_bf16_accumulate_fp32_->efficiency(m, n, k), bf16_efficiency)
          : bf16_efficiency;
  const double compute_s = 2.0 * m * n * k / (peak(precision) * efficiency);
  // The bf16 table's efficiency includes a bf16 output; an accumulating one may make the GEMM
  // memory-bound instead (outside the measured range too, for the accumulate table).
  if (output == GemmOutput::bf16)
    return compute_s;
  return std::max(compute_s, streaming_time_s(m, n, k, precision, output));
}

double ComputeCostModel::gemm_time_s(std::int64_t m, std::int64_t n, std::int64_t k,
                                     GemmPrecision precision, GemmOutput output) const {
  assert(m >= 0 && n >= 0 && k >= 0);
  if (m == 0 || n == 0 || k == 0)
    return 0;
  return std::max(
      unfloored_gemm_time_s(as_double(m), as_double(n), as_double(k), precision, output),
      kMinComputeKernelTime_s);
}

double ComputeCostModel::grouped_gemm_time_s(std::int64_t groups, std::int64_t m_per_group,
                                             std::int64_t n, std::int64_t k,
                                             GemmPrecision precision, GemmOutput output) const {
  assert(groups >= 0 && m_per_group >= 0 && n >= 0 && k >= 0);
  if (groups == 0 || m_per_group == 0 || n == 0 || k == 0)
    return 0;
  const double count = as_double(groups);
  const double m = as_double(m_per_group);
  const double columns = as_double(n);
  const double one_by_one_s =
      count * unfloored_gemm_time_s(m, columns, as_double(k), precision, output);
  // Together the groups' tiles could at best share the waves of one GEMM of all their rows, each
  // group padded to whole tiles; and every group still streams its own operands.
  const double padded_rows = count * std::ceil(m / static_cast<double>(kGemmTileRows)) *
                             static_cast<double>(kGemmTileRows);
  const double shared_waves_s =
      unfloored_gemm_time_s(padded_rows, columns, as_double(k), precision, GemmOutput::bf16);
  const double own_operands_s =
      count * streaming_time_s(m, columns, as_double(k), precision, output);
  // Transformer Engine's GroupedLinear (Megatron's TEGroupedMLP) runs one cuBLAS GEMM per group,
  // spread over its compute streams: groups too small to fill the SMs overlap, up to one per
  // stream; groups that fill them run one after another.
  const double tiles_per_group = std::ceil(m / static_cast<double>(kGemmTileRows)) *
                                 std::ceil(columns / static_cast<double>(kGemmTileColumnsWide));
  const double concurrency =
      std::clamp(std::floor(static_cast<double>(gpu_.num_sms) / tiles_per_group), 1.0,
                 std::min(static_cast<double>(kGroupedGemmStreams), count));
  return std::max(std::min(one_by_one_s,
                           std::max({one_by_one_s / concurrency, shared_waves_s, own_operands_s})),
                  kMinComputeKernelTime_s);
}

double ComputeCostModel::gemm_efficiency(std::int64_t m, std::int64_t n, std::int64_t k,
                                         GemmPrecision precision) const {
  if (m == 0 || n == 0 || k == 0)
    return 0;
  const double flops = 2.0 * as_double(m) * as_double(n) * as_double(k);
  return flops / (peak(precision) * gemm_time_s(m, n, k, precision));
}

double ComputeCostModel::attention_efficiency(const AttentionShape& shape, bool backward) const {
  assert(shape.batch > 0 && shape.heads > 0 && shape.kv_heads > 0 &&
         shape.heads % shape.kv_heads == 0 && shape.seq_q > 0 && shape.seq_kv > 0 &&
         shape.qk_head_dim > 0 && shape.v_head_dim > 0);
  if (attention_)
    return attention_->efficiency(shape, backward, physical_attention_);
  return physical_attention_.efficiency(as_double(shape.batch) * as_double(shape.heads),
                                        as_double(shape.seq_q), as_double(shape.seq_kv),
                                        shape.causal, backward);
}

double ComputeCostModel::attention_forward_time_s(const AttentionShape& shape) const {
  const double flops = attention_forward_flops(shape);
  if (flops == 0)
    return 0;
  return std::max(flops / (gpu_.bf16_flops * attention_efficiency(shape, false)),
                  kMinComputeKernelTime_s);
}

double ComputeCostModel::attention_backward_time_s(const AttentionShape& shape) const {
  const double flops = attention_backward_flops(shape);
  if (flops == 0)
    return 0;
  return std::max(flops / (gpu_.bf16_flops * attention_efficiency(shape, true)),
                  kMinComputeKernelTime_s);
}

double ComputeCostModel::memory_bound_time_s(double bytes, int kernels) const {
  assert(bytes >= 0 && kernels >= 1);
  if (bytes == 0)
    return 0;
  return kernels * kStreamingKernelLatency_s + bytes / memory_bound_Bps_;
}

} // namespace foldplan
