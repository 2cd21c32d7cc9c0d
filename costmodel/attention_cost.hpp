// Fused attention (flash-style: cuDNN's fused attention on Hopper, which Megatron uses through
// Transformer Engine): its FLOPs, counted the way the calibration counts them, and its efficiency
// — from the measured table when there is one, else from a physical model of the kernel.
//
// FLOPs per (batch, head) are 2·pairs·d per matrix product, where pairs is the number of
// (query, key) positions that attend: forward QKᵀ (qk dim) and PV (v dim); backward recomputes
// QKᵀ and computes dV = PᵀdO, dP = dO·Vᵀ, dQ = dS·K, dK = dSᵀQ — 3 products of the qk dim and 2
// of the v dim: 2.5× the forward when the dims are equal, as the FlashAttention-2 paper's
// benchmarks and our calibration count it (5 matrix products against 2).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "costmodel/log_grid.hpp"
#include "topologies/cluster_spec.hpp"
#include "topologies/gpu_calibration.hpp"

namespace foldplan {

// One fused attention call. With context parallelism a rank attends its seq_q queries to one
// seq_kv chunk of keys at a time; those blocks are full (non-causal) except the diagonal one.
struct AttentionShape {
  std::int64_t batch = 1, heads = 0, kv_heads = 0, seq_q = 0, seq_kv = 0, qk_head_dim = 0,
               v_head_dim = 0;
  bool causal = true;
};

// (query, key) pairs that attend, per batch element and head. Causal masks are bottom-right
// aligned when seq_q ≠ seq_kv (query i sees keys up to i + seq_kv − seq_q, as in FlashAttention ≥
// 2.1 and cuDNN): seq_q·seq_kv − seq_q²/2 when seq_q ≤ seq_kv, seq_kv²/2 otherwise; s²/2 when
// both are s, as the calibration counts it.
double attended_pairs(const AttentionShape& shape);
double attention_forward_flops(const AttentionShape& shape);
double attention_backward_flops(const AttentionShape& shape);

// Physical model constants, fitted (minimax) to the 36 H100 cuDNN points of
// topologies/calibration/h100.json (causal, d = 128, 8–64 heads, seq 1024–32768), which are
// normalised to the SM clock the H100 holds under a training load (1530 MHz): the model's time is
// then within 25.8% of every point forward, 24.1% backward, median 16% forward and 13% backward
// (forward: no fraction/overhead pair gets under 25.8%).
// The ceiling, as a fraction of the dense bf16 peak, at that training-load clock.
inline constexpr double kAttentionForwardPeakFraction = 0.54;
inline constexpr double kAttentionBackwardPeakFraction = 0.47;
// Rows of queries (forward) or keys (backward) one CTA owns.
inline constexpr double kAttentionBlockRows = 128;
// A CTA's fixed cost (loading its block, the softmax epilogue, writing out), as the time of this
// many more key (forward) or query (backward) positions.
inline constexpr double kAttentionForwardBlockOverhead = 768;
inline constexpr double kAttentionBackwardBlockOverhead = 1088;

// The kernel as the FlashAttention-2 schedule runs it: the forward gives each CTA a block of 128
// queries that walks the keys it sees, the backward gives each CTA a block of 128 keys that walks
// the queries that see it. Time is the larger of the total work spread over all SMs and the
// longest CTA's work on one SM (a CTA cannot be split).
class PhysicalAttentionModel {
public:
  explicit PhysicalAttentionModel(const GpuSpec& gpu);
  // `batch_heads` = batch · heads; all sizes positive. Without a per-launch floor.
  double time_s(double batch_heads, double seq_q, double seq_kv, double qk_head_dim,
                double v_head_dim, bool causal, bool backward) const;
  // Achieved / dense bf16 peak; independent of the head dims.
  double efficiency(double batch_heads, double seq_q, double seq_kv, bool causal,
                    bool backward) const;

private:
  double bf16_flops_;
  double num_sms_;
};

// The calibration backend the cost model prices attention with by default: cuDNN, which Megatron
// runs through Transformer Engine. `foldplan run` asks for "foldplan", the kernel it executes.
inline constexpr const char* kDefaultAttentionBackend = "cudnn";

// Whether `measurements` holds any point of `backend`.
bool has_attention_points(std::span<const AttentionMeasurement> measurements,
                          const std::string& backend);
// The backend whose points a table asked for `backend` is built from: `backend` when measured,
// else cuDNN when measured, else empty (every point).
std::string attention_table_backend(std::span<const AttentionMeasurement> measurements,
                                    const std::string& backend);

// The measured table: efficiency over (equivalent seq, batch · heads), forward and backward, for
// the points of the asked backend when there are any, else — as when none is asked — the cuDNN
// points when there are any, else every point. Of those, the causal points at head dim 128 when
// there are any (what the physical model was fitted to; a non-causal point or another head dim
// at the same coordinates would be averaged into the square's efficiency), else all of them.
// The table measured causal squares
// (seq_q = seq_kv = s, pairs = s²/2); another shape looks up the square with as many pairs per
// head, s = √(2·pairs), and the physical model corrects for how its blocks differ (a full
// context-parallel block has no triangle to balance: up to 28% faster than its square). The GQA
// group does not enter: at d = 128 the kernel is compute-bound, and the H100 table's spread at one
// group size (8/1, 16/2, 64/8 at s = 4096: 288, 352, 458 TFLOP/s) follows the number of heads —
// the parallelism — instead. Above the measured range the efficiency holds; below it, the
// physical model's ratio between the actual coordinates and the edge, taken at the actual value
// of the other coordinate. Head dims other than the measured ones use the same efficiency (an
// H100 probe: qk 192 / v 128 ran within 5% of d = 128; d = 64 reached only 68% (forward) and 78%
// (backward) of the d = 128 efficiency, which is not modelled).
// Time grows with seq and heads exactly inside the measured seq range; below it, and along seq_kv
// at a fixed seq_q, where the physical and measured trends disagree it can dip by up to 2–3%.
class AttentionEfficiencyTable {
public:
  // `measurements` must not be empty.
  AttentionEfficiencyTable(std::span<const AttentionMeasurement> measurements,
                           double bf16_peak_flops,
                           const std::string& backend = kDefaultAttentionBackend);
  double efficiency(const AttentionShape& shape, bool backward,
                    const PhysicalAttentionModel& physical) const;

private:
  LogGrid<2> forward_;
  LogGrid<2> backward_;
};

} // namespace foldplan
