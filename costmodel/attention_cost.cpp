#include "costmodel/attention_cost.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <vector>

namespace foldplan {
namespace {

double as_double(std::int64_t value) {
  return static_cast<double>(value);
}

double pairs_per_head(double seq_q, double seq_kv, bool causal) {
  if (!causal)
    return seq_q * seq_kv;
  if (seq_q <= seq_kv)
    return seq_q * seq_kv - seq_q * seq_q / 2;
  return seq_kv * seq_kv / 2;
}

// The causal square with as many pairs per head: s²/2 = pairs.
double equivalent_seq(double pairs) {
  return std::sqrt(2 * pairs);
}

} // namespace

double attended_pairs(const AttentionShape& shape) {
  return pairs_per_head(as_double(shape.seq_q), as_double(shape.seq_kv), shape.causal);
}

double attention_forward_flops(const AttentionShape& shape) {
  const double products_dims = as_double(shape.qk_head_dim) + as_double(shape.v_head_dim);
  return 2.0 * as_double(shape.batch) * as_double(shape.heads) * attended_pairs(shape) *
         products_dims;
}

double attention_backward_flops(const AttentionShape& shape) {
  const double products_dims =
      3.0 * as_double(shape.qk_head_dim) + 2.0 * as_double(shape.v_head_dim);
  return 2.0 * as_double(shape.batch) * as_double(shape.heads) * attended_pairs(shape) *
         products_dims;
}

PhysicalAttentionModel::PhysicalAttentionModel(const GpuSpec& gpu)
    : bf16_flops_(gpu.bf16_flops), num_sms_(static_cast<double>(gpu.num_sms)) {
  assert(gpu.bf16_flops > 0 && gpu.num_sms > 0);
}

double PhysicalAttentionModel::time_s(double batch_heads, double seq_q, double seq_kv,
                                      double qk_head_dim, double v_head_dim, bool causal,
                                      bool backward) const {
  assert(batch_heads > 0 && seq_q > 0 && seq_kv > 0);
  const double flops_per_pair =
      backward ? 2.0 * (3.0 * qk_head_dim + 2.0 * v_head_dim) : 2.0 * (qk_head_dim + v_head_dim);
  const double peak_fraction =
      backward ? kAttentionBackwardPeakFraction : kAttentionForwardPeakFraction;
  const double block_overhead =
      backward ? kAttentionBackwardBlockOverhead : kAttentionForwardBlockOverhead;
  // Forward blocks split the queries and walk the keys; backward blocks the other way round.
  const double blocked_seq = backward ? seq_kv : seq_q;
  const double walked_seq = backward ? seq_q : seq_kv;
  // Fractional blocks: a partial block costs its share (the kernel packs short sequences into
  // shared waves), which keeps the time continuous in the sequence length.
  const double blocks = batch_heads * std::max(blocked_seq / kAttentionBlockRows, 1.0);

  const double flops_per_sm = bf16_flops_ * peak_fraction / num_sms_;
  const double total_flops = (batch_heads * pairs_per_head(seq_q, seq_kv, causal) +
                              blocks * kAttentionBlockRows * block_overhead) *
                             flops_per_pair;
  // The longest block is the one that sees every walked position (the last query block of a
  // causal forward, the first key block of a causal backward).
  const double longest_block_flops =
      kAttentionBlockRows * (walked_seq + block_overhead) * flops_per_pair;
  return std::max(total_flops / (flops_per_sm * num_sms_), longest_block_flops / flops_per_sm);
}

double PhysicalAttentionModel::efficiency(double batch_heads, double seq_q, double seq_kv,
                                          bool causal, bool backward) const {
  // The head dims cancel: both the FLOPs and the time are proportional to the FLOPs per pair.
  constexpr double kAnyHeadDim = 128;
  const double time =
      time_s(batch_heads, seq_q, seq_kv, kAnyHeadDim, kAnyHeadDim, causal, backward);
  const double flops_per_pair = backward ? 10.0 * kAnyHeadDim : 4.0 * kAnyHeadDim;
  return batch_heads * pairs_per_head(seq_q, seq_kv, causal) * flops_per_pair /
         (time * bf16_flops_);
}

namespace {

bool is_reference_shape(const AttentionMeasurement& point) {
  constexpr std::int64_t kReferenceHeadDim = 128;
  return point.causal && point.head_dim == kReferenceHeadDim;
}

std::vector<LogGrid<2>::Measurement>
attention_points(std::span<const AttentionMeasurement> measurements, double bf16_peak_flops,
                 const std::string& backend, bool backward) {
  const std::string chosen = attention_table_backend(measurements, backend);
  std::vector<AttentionMeasurement> selected;
  for (const AttentionMeasurement& point : measurements) {
    if (chosen.empty() || point.backend == chosen)
      selected.push_back(point);
  }
  if (std::any_of(selected.begin(), selected.end(), is_reference_shape))
    std::erase_if(selected,
                  [](const AttentionMeasurement& point) { return !is_reference_shape(point); });
  std::vector<LogGrid<2>::Measurement> points;
  for (const AttentionMeasurement& point : selected) {
    const double seq = as_double(point.seq);
    const double tflops = backward ? point.bwd_tflops : point.fwd_tflops;
    points.push_back({{equivalent_seq(pairs_per_head(seq, seq, point.causal)),
                       as_double(point.batch) * as_double(point.heads)},
                      tflops * 1e12 / bf16_peak_flops});
  }
  return points;
}

// FLOPs ∝ seq² · (batch · heads) for the causal square at the grid's coordinates.
constexpr LogGrid<2>::Coordinates kAttentionFlopsExponents{2.0, 1.0};

} // namespace

bool has_attention_points(std::span<const AttentionMeasurement> measurements,
                          const std::string& backend) {
  return std::any_of(measurements.begin(), measurements.end(),
                     [&](const AttentionMeasurement& point) { return point.backend == backend; });
}

std::string attention_table_backend(std::span<const AttentionMeasurement> measurements,
                                    const std::string& backend) {
  if (has_attention_points(measurements, backend))
    return backend;
  if (has_attention_points(measurements, kDefaultAttentionBackend))
    return kDefaultAttentionBackend;
  return {};
}

AttentionEfficiencyTable::AttentionEfficiencyTable(
    std::span<const AttentionMeasurement> measurements, double bf16_peak_flops,
    const std::string& backend)
    : forward_(attention_points(measurements, bf16_peak_flops, backend, false),
               kAttentionFlopsExponents),
      backward_(attention_points(measurements, bf16_peak_flops, backend, true),
                kAttentionFlopsExponents) {}

double AttentionEfficiencyTable::efficiency(const AttentionShape& shape, bool backward,
                                            const PhysicalAttentionModel& physical) const {
  const double seq_q = as_double(shape.seq_q);
  const double seq_kv = as_double(shape.seq_kv);
  const double batch_heads = as_double(shape.batch) * as_double(shape.heads);
  const double seq = equivalent_seq(pairs_per_head(seq_q, seq_kv, shape.causal));
  const LogGrid<2>& grid = backward ? backward_ : forward_;
  const LogGrid<2>::Lookup lookup = grid.at({seq, batch_heads});

  const auto square_efficiency = [&](const LogGrid<2>::Coordinates& at) {
    return physical.efficiency(at[1], at[0], at[0], true, backward);
  };
  // Below the measured range: the physical model's ratio between the actual coordinates and
  // those with the axes that fell below moved up to the edge (the other axes as they are, so that
  // e.g. many heads at a short seq keep the parallelism they have).
  const LogGrid<2>::Coordinates actual{seq, batch_heads};
  LogGrid<2>::Coordinates at_edge = actual;
  for (std::size_t d = 0; d < 2; ++d) {
    if (lookup.side[d] == LogGrid<2>::Side::below)
      at_edge[d] = lookup.clamped[d];
  }
  double efficiency = lookup.efficiency;
  if (at_edge != actual)
    efficiency *= square_efficiency(actual) / square_efficiency(at_edge);
  // A shape other than the measured causal square: the physical model's ratio to that square.
  const bool causal_square = shape.causal && shape.seq_q == shape.seq_kv;
  if (!causal_square) {
    efficiency *= physical.efficiency(batch_heads, seq_q, seq_kv, shape.causal, backward) /
                  square_efficiency(actual);
  }
  return efficiency;
}

} // namespace foldplan
