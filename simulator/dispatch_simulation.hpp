// The MoE token-dispatcher simulation: for one MoE layer and micro-batch, every source rank of an
// ETP×EP group routes its tokens, drops them to capacity, and dispatches them — the alltoall
// dispatcher's all-to-all-v over EP then all-gather over ETP, or the allgather dispatcher's
// all-gather over ETP·EP — giving the send matrix, the rows every rank's experts compute, and the
// load imbalance. Aggregated over the model's MoE layers and a number of micro-batches.
// Semantics: Megatron-Core token_dispatcher.py (reference §3.0–3.5).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "models/model_spec.hpp"
#include "parallel/parallel_config.hpp"
#include "parallel/plan_options.hpp"
#include "simulator/routing.hpp"

namespace foldplan {

// The CLI's default seed; any fixed value makes a run reproducible.
inline constexpr std::uint64_t kDefaultRoutingSeed = 42;

// Everything about one MoE layer's dispatch that does not depend on the routing.
struct DispatchGeometry {
  std::int64_t num_experts = 0;
  std::int64_t topk = 0;
  std::int64_t hidden_size = 0;
  std::int64_t tokens_per_rank = 0; // T = mbs·seq/(TP·CP), sequence parallel on
  std::int64_t etp = 1;
  std::int64_t ep = 1;
  Dispatcher dispatcher = Dispatcher::alltoall;

  std::int64_t local_experts() const { return num_experts / ep; }
  std::int64_t group_size() const { return etp * ep; } // the tp_ep group of the source ranks
  std::int64_t bytes_per_row() const { return hidden_size * 2; } // bf16 activations
};

// Reads the geometry from a plan; InputError for a dense model, EP not dividing the experts,
// tokens that do not split evenly over TP·CP, or a top-k beyond the simulation's limit of 64.
DispatchGeometry dispatch_geometry(const ModelSpec& model, const ParallelConfig& parallel,
                                   const TrainingShape& training, const PlanOptions& options);

// An EP all-to-all-v: rows[src·size + dst] rows of tokens from EP rank src to EP rank dst.
struct AllToAllMatrix {
  std::int64_t size = 0;
  std::vector<std::int64_t> rows;

  std::int64_t at(std::int64_t source, std::int64_t destination) const {
    return rows[static_cast<std::size_t>(source * size + destination)];
  }
  std::int64_t rows_sent(std::int64_t source) const;
  std::int64_t rows_received(std::int64_t destination) const;
  std::int64_t total_rows() const;
};

struct LayerDispatch {
  std::int64_t layer = 0; // model layer index (0-based)
  std::int64_t micro_batch = 0;
  std::int64_t bytes_per_row = 0; // send bytes = rows · bytes_per_row (h · 2, bf16)
  // alltoall: one EP all-to-all-v per ETP index (empty for allgather).
  std::vector<AllToAllMatrix> ep_alltoall;
  // allgather: rows each rank gathers over ETP·EP (g·T); 0 for alltoall.
  std::int64_t gathered_rows_per_rank = 0;
  // Rows each EP rank's local experts compute, padding included, after the ETP all-gather (every
  // ETP shard of an EP rank computes the same rows on its slice of the FFN width).
  std::vector<std::int64_t> computed_rows_per_ep_rank;
  std::int64_t max_load_ep_rank = 0; // the first rank with the most rows
  double load_factor = 1;            // max / mean of computed_rows_per_ep_rank
  std::int64_t routed_choices = 0;   // Σ over source ranks of T·k
  std::int64_t dropped_choices = 0;
  std::int64_t padding_rows = 0;

  std::int64_t max_computed_rows() const;
  double dropped_fraction() const;
};

// The dispatch of one layer from given routings, one per source rank of the tp_ep group in
// Megatron's MoE rank order (index etp + ETP·ep). Dropping follows `options`.
LayerDispatch dispatch_layer(std::span<const SourceRouting> sources,
                             const DispatchGeometry& geometry, const PlanOptions& options);

// Routes every source rank of one layer and micro-batch (seeds from routing_seed) and dispatches.
// `expert_shares` comes from draw_expert_shares for this layer.
LayerDispatch simulate_layer_dispatch(const DispatchGeometry& geometry, const PlanOptions& options,
                                      const RoutingSpec& spec,
                                      std::span<const double> expert_shares, std::int64_t layer,
                                      std::int64_t micro_batch, std::uint64_t seed);

struct DispatchResult {
  DispatchGeometry geometry;
  std::vector<LayerDispatch> samples; // MoE layer-major, then micro-batch
  double mean_load_factor = 1;
  double max_load_factor = 1;
  double dropped_fraction = 0;        // dropped choices / routed choices over all samples
  std::int64_t max_computed_rows = 0; // the hottest rank of any sample
  std::int64_t padding_rows = 0;
};

// Every MoE layer of `model` × `micro_batches` micro-batches. Expert shares are drawn once per
// layer, routing per (layer, micro-batch, source rank). InputError as dispatch_geometry, for
// micro_batches < 1, or for a histogram whose length is not the expert count.
DispatchResult simulate_dispatch(const ModelSpec& model, const ParallelConfig& parallel,
                                 const TrainingShape& training, const PlanOptions& options,
                                 const RoutingSpec& spec, int micro_batches,
                                 std::uint64_t seed = kDefaultRoutingSeed);

} // namespace foldplan
