#include "costmodel/compute_cost.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "core/errors.hpp"

namespace foldplan {
namespace {

double as_double(std::int64_t value) {
  return static_cast<double>(value);
}

const char* precision_name(GemmPrecision precision) {
  return precision == GemmPrecision::fp8 ? "fp8" : "bf16";
}

} // namespace

ComputeCostModel::ComputeCostModel(const GpuSpec& gpu, std::optional<GpuCalibration> calibration)
    : gpu_(gpu), physical_gemm_(gpu), physical_attention_(gpu),
      streaming_Bps_(gpu.hbm_bw_Bps * kAchievableHbmFraction) {
  if (!calibration)
    return;
  if (calibration->gpu != gpu.name) {
    throw InputError("calibration.gpu", fmt::format("\"{}\" is not the cluster's GPU \"{}\"",
                                                    calibration->gpu, gpu.name));
  }
  calibrated_ = true;
  if (!calibration->gemm_bf16.empty())
    gemm_bf16_.emplace(calibration->gemm_bf16, gpu, GemmPrecision::bf16);
  if (!calibration->gemm_fp8.empty() && gpu.fp8_flops > 0)
    gemm_fp8_.emplace(calibration->gemm_fp8, gpu, GemmPrecision::fp8);
  if (!calibration->attention.empty())
    attention_.emplace(calibration->attention, gpu.bf16_flops);
  streaming_Bps_ = calibration->elementwise_Bps;
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

double ComputeCostModel::gemm_time_s(std::int64_t m, std::int64_t n, std::int64_t k,
                                     GemmPrecision precision) const {
  assert(m >= 0 && n >= 0 && k >= 0);
  if (m == 0 || n == 0 || k == 0)
    return 0;
  const double flops = 2.0 * as_double(m) * as_double(n) * as_double(k);
  const double efficiency =
      gemm_efficiency_of_shape(as_double(m), as_double(n), as_double(k), precision);
  return std::max(flops / (peak(precision) * efficiency), kMinComputeKernelTime_s);
}

double ComputeCostModel::grouped_gemm_time_s(std::int64_t groups, std::int64_t m_per_group,
                                             std::int64_t n, std::int64_t k,
                                             GemmPrecision precision) const {
  assert(groups >= 0 && m_per_group >= 0 && n >= 0 && k >= 0);
  if (groups == 0 || m_per_group == 0 || n == 0 || k == 0)
    return 0;
  const double count = as_double(groups);
  const double m = as_double(m_per_group);
  const auto unfloored_time_s = [&](double rows) {
    return 2.0 * rows * as_double(n) * as_double(k) /
           (peak(precision) *
            gemm_efficiency_of_shape(rows, as_double(n), as_double(k), precision));
  };
  const double one_by_one_s = count * unfloored_time_s(m);
  // In one kernel the groups' tiles share the waves, as one GEMM of all their rows would, each
  // group padded to whole tiles; but every group still streams its own operands.
  const double padded_rows = count * std::ceil(m / static_cast<double>(kGemmTileRows)) *
                             static_cast<double>(kGemmTileRows);
  const double shared_waves_s = unfloored_time_s(padded_rows);
  const double own_operands_s =
      count * gemm_operand_bytes(m, as_double(n), as_double(k), precision) / streaming_Bps_;
  return std::max(std::min(one_by_one_s, std::max(shared_waves_s, own_operands_s)),
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

double ComputeCostModel::memory_bound_time_s(double bytes) const {
  assert(bytes >= 0);
  if (bytes == 0)
    return 0;
  return kStreamingKernelLatency_s + bytes / streaming_Bps_;
}

} // namespace foldplan
