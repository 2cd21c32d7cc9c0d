// ComputeCostModel: how long the kernels of one GPU take — GEMMs (dense and grouped), fused
// attention, and streaming memory-bound kernels — from the GPU's measured calibration where one
// exists (topologies/calibration/<gpu>.json), else from physical models of the datasheet.
// Built once per cluster; every query is a few table look-ups and no allocation, because the
// planner asks millions of them.
//
// Times are device times of one kernel in a busy training step: the calibration's GEMM and
// attention throughputs are normalised to the SM clock the GPU holds under a training load
// (docs/measurements.md), and neither it nor the models include host launch overhead.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "costmodel/attention_cost.hpp"
#include "costmodel/gemm_efficiency.hpp"
#include "topologies/cluster_spec.hpp"
#include "topologies/gpu_calibration.hpp"

namespace foldplan {

// No GEMM or attention kernel takes less device time than this: just under the shortest GEMM of
// the sweeps at the training-load clock (fp8 64×1024×1024: 3.88 µs on the H100, 3.95 µs on the
// H200), timed as CUDA-graph replays, so with no host launch
// gap in it.
inline constexpr double kMinComputeKernelTime_s = 3.8e-6;
// A streaming kernel's fixed cost, added to its bytes over the bandwidth: on an H100, bf16
// torch.addcmul of 1 Ki–64 Ki elements replayed back to back in a CUDA graph took 1.2–1.6 µs each
// (probe run with this model, 2026-11; 1 GiB tensors ran at 3120 GB/s, as the calibration says).
inline constexpr double kStreamingKernelLatency_s = 1.3e-6;
// Compute streams Transformer Engine spreads a grouped GEMM's per-group cuBLAS calls over
// (transformer_engine/common/util/multi_stream.cpp: num_compute_streams = 4).
inline constexpr int kGroupedGemmStreams = 4;

// Whose kernels a prediction prices. The calibration's gemm.bf16_accumulate_fp32 table was
// measured with foldplan's runtime call (cublasGemmEx NN, fp32 C, beta 1), so it prices
// `foldplan run`'s accumulating GEMMs; its memory.stream_Bps, run's memory-bound stand-in.
// Megatron's weight gradients go through Transformer Engine's cublasLt calls (another layout and
// heuristic) that no lent machine has measured; they keep the bf16 table with the fp32 output's
// streaming bound (docs/calibration.md says why).
enum class GemmKernels { megatron, foldplan_runtime };

class ComputeCostModel {
public:
  // Without a calibration (nullopt) every cost comes from the physical models. A calibration must
  // be for this GPU (its "gpu" equal to gpu.name; an InputError otherwise); a part of it that is
  // empty (no fp8 GEMMs, no attention) falls back to the physical model. Attention is priced from
  // the calibration's `attention_backend` points (kernel measurements, e.g. "cudnn", "foldplan"),
  // else as AttentionEfficiencyTable falls back; attention_fallback() then says so.
  ComputeCostModel(const GpuSpec& gpu, std::optional<GpuCalibration> calibration,
                   const std::string& attention_backend = kDefaultAttentionBackend,
                   GemmKernels gemm_kernels = GemmKernels::megatron);

  // C[m,n] = A[m,k]·B[k,n]. A zero dimension costs nothing. fp8 requires gpu.fp8_flops > 0
  // (supports(GemmPrecision::fp8)); asking otherwise is a programming error (std::logic_error).
  // With GemmOutput::fp32_accumulate the output's fp32 read and write bound the time too: the
  // weight gradients of small expert GEMMs (few rows, large [k, n] output) are memory-bound. For
  // GemmKernels::foldplan_runtime a bf16 one is priced from the calibration's
  // gemm.bf16_accumulate_fp32 table where it has one (that bound still holds), else from the bf16
  // table (bf16 output) with that bound.
  double gemm_time_s(std::int64_t m, std::int64_t n, std::int64_t k, GemmPrecision precision,
                     GemmOutput output = GemmOutput::bf16) const;
  // A grouped GEMM (MoE experts, Megatron --moe-grouped-gemm through Transformer Engine's
  // GroupedLinear): `groups` GEMMs of [m_per_group, n, k] each, one cuBLAS call per group over
  // kGroupedGemmStreams streams. Never slower than the groups one by one at the efficiency of
  // their own shape; groups too small to fill the SMs overlap (up to one per stream), bounded
  // below by one GEMM of all their rows (each group padded to whole 128-row tiles) and by every
  // group streaming its own operands at streaming_Bps() — the weights are what make small
  // m_per_group slow. A single-kernel grouped GEMM (torch._grouped_mm on an H100, probe run,
  // 2026-11, at 1980 MHz) ran 9 MoE shapes from 8×[1024, 4096, 7168] to 64×[16, 1024, 2048] at
  // most 19% slower than the shared-waves bound (its weight streaming reached 2.8 TB/s, not 3.1).
  double grouped_gemm_time_s(std::int64_t groups, std::int64_t m_per_group, std::int64_t n,
                             std::int64_t k, GemmPrecision precision,
                             GemmOutput output = GemmOutput::bf16) const;
  // Fused attention (cuDNN through Transformer Engine, unless another backend was asked for).
  // seq_q ≠ seq_kv is a context-parallel block; attention_cost.hpp says how FLOPs are counted.
  double attention_forward_time_s(const AttentionShape& shape) const;
  double attention_backward_time_s(const AttentionShape& shape) const;
  // Streaming, memory-bound kernels (norms, activations, permute, optimizer step): bytes read +
  // written, at the calibration's elementwise figure (foldplan_runtime: its stream_Bps, when
  // measured).
  double memory_bound_time_s(double bytes, int kernels = 1) const;
  // Achieved / dense peak of `precision`, as gemm_time_s prices it (0 for an empty GEMM).
  double gemm_efficiency(std::int64_t m, std::int64_t n, std::int64_t k,
                         GemmPrecision precision) const;
  // Achieved / dense bf16 peak, as the attention times price it.
  double attention_efficiency(const AttentionShape& shape, bool backward) const;

  bool calibrated() const { return calibrated_; }
  // When no points of the asked attention backend price attention: one line saying what does
  // instead and why, e.g. "attention predicted from cudnn measurements: no foldplan points in the
  // H200-SXM5-141GB calibration"; nullopt when the asked backend's points do.
  const std::optional<std::string>& attention_fallback() const { return attention_fallback_; }
  bool supports(GemmPrecision precision) const;
  const GpuSpec& gpu() const { return gpu_; }
  // What memory_bound_time_s streams at: the calibrated elementwise kernel's bandwidth, else
  // kAchievableHbmFraction of the datasheet's.
  double streaming_Bps() const { return streaming_Bps_; }

private:
  // Without the launch floor.
  double gemm_efficiency_of_shape(double m, double n, double k, GemmPrecision precision) const;
  double peak(GemmPrecision precision) const;
  // Operands (and output) streamed once at streaming_Bps().
  double streaming_time_s(double m, double n, double k, GemmPrecision precision,
                          GemmOutput output) const;
  double unfloored_gemm_time_s(double m, double n, double k, GemmPrecision precision,
                               GemmOutput output) const;

  GpuSpec gpu_;
  bool calibrated_ = false;
  PhysicalGemmModel physical_gemm_;
  PhysicalAttentionModel physical_attention_;
  std::optional<GemmEfficiencyTable> gemm_bf16_;
  std::optional<GemmEfficiencyTable> gemm_bf16_accumulate_fp32_;
  std::optional<GemmEfficiencyTable> gemm_fp8_;
  std::optional<AttentionEfficiencyTable> attention_;
  std::optional<std::string> attention_fallback_;
  double streaming_Bps_ = 0;
  double memory_bound_Bps_ = 0; // streaming_Bps_, or the calibration's stream_Bps for run's kernels
};

} // namespace foldplan
