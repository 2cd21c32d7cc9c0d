// One MoE layer's dispatch over an ETP×EP group, and its aggregate over layers and micro-batches.
#include "simulator/dispatch_simulation.hpp"

#include <algorithm>
#include <cassert>
#include <numeric>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "simulator/token_dropping.hpp"

namespace foldplan {
namespace {

// Collects the source ranks of one layer one at a time, so a layer never holds every rank's
// routing at once.
class LayerAccumulator {
public:
  LayerAccumulator(const DispatchGeometry& geometry, std::int64_t layer, std::int64_t micro_batch)
      : geometry_(geometry) {
    dispatch_.layer = layer;
    dispatch_.micro_batch = micro_batch;
    dispatch_.bytes_per_row = geometry.bytes_per_row();
    dispatch_.computed_rows_per_ep_rank.assign(static_cast<std::size_t>(geometry.ep), 0);
    if (geometry.dispatcher == Dispatcher::alltoall) {
      dispatch_.ep_alltoall.assign(
          static_cast<std::size_t>(geometry.etp),
          AllToAllMatrix{geometry.ep, std::vector<std::int64_t>(
                                          static_cast<std::size_t>(geometry.ep * geometry.ep), 0)});
    } else {
      dispatch_.gathered_rows_per_rank = geometry.group_size() * geometry.tokens_per_rank;
    }
  }

  // `moe_rank` is the source's index in the tp_ep group, etp + ETP·ep.
  void add_source(std::int64_t moe_rank, const DroppedRouting& dropped) {
    const std::int64_t source_etp = moe_rank % geometry_.etp;
    const std::int64_t source_ep = moe_rank / geometry_.etp;
    const std::int64_t local_experts = geometry_.local_experts();
    for (std::int64_t destination = 0; destination < geometry_.ep; ++destination) {
      const auto first = dropped.rows_per_expert.begin() + destination * local_experts;
      const std::int64_t rows = std::accumulate(first, first + local_experts, std::int64_t{0});
      // Both dispatchers bring every source's rows for an EP rank's experts to that rank (the
      // alltoall one by A2A(EP) then AG(ETP), the allgather one by AG(ETP·EP)); they differ
      // in what travels, not in what is computed.
      dispatch_.computed_rows_per_ep_rank[static_cast<std::size_t>(destination)] += rows;
      if (geometry_.dispatcher == Dispatcher::alltoall) {
        AllToAllMatrix& matrix = dispatch_.ep_alltoall[static_cast<std::size_t>(source_etp)];
        matrix.rows[static_cast<std::size_t>(source_ep * geometry_.ep + destination)] += rows;
      }
    }
    dispatch_.routed_choices += dropped.routed_choices;
    dispatch_.dropped_choices += dropped.dropped_choices;
    dispatch_.padding_rows += dropped.padding_rows;
  }

  LayerDispatch finish() {
    const std::vector<std::int64_t>& rows = dispatch_.computed_rows_per_ep_rank;
    const auto hottest = std::max_element(rows.begin(), rows.end());
    dispatch_.max_load_ep_rank = hottest - rows.begin();
    const double mean =
        static_cast<double>(std::accumulate(rows.begin(), rows.end(), std::int64_t{0})) /
        static_cast<double>(rows.size());
    dispatch_.load_factor = mean > 0 ? static_cast<double>(*hottest) / mean : 1.0;
    return std::move(dispatch_);
  }

private:
  const DispatchGeometry& geometry_;
  LayerDispatch dispatch_;
};

} // namespace

std::int64_t AllToAllMatrix::rows_sent(std::int64_t source) const {
  std::int64_t total = 0;
  for (std::int64_t destination = 0; destination < size; ++destination)
    total += at(source, destination);
  return total;
}

std::int64_t AllToAllMatrix::rows_received(std::int64_t destination) const {
  std::int64_t total = 0;
  for (std::int64_t source = 0; source < size; ++source)
    total += at(source, destination);
  return total;
}

std::int64_t AllToAllMatrix::total_rows() const {
  return std::accumulate(rows.begin(), rows.end(), std::int64_t{0});
}

std::int64_t LayerDispatch::max_computed_rows() const {
  return computed_rows_per_ep_rank.empty() ? 0
                                           : *std::max_element(computed_rows_per_ep_rank.begin(),
                                                               computed_rows_per_ep_rank.end());
}

double LayerDispatch::dropped_fraction() const {
  return routed_choices > 0
             ? static_cast<double>(dropped_choices) / static_cast<double>(routed_choices)
             : 0.0;
}

DispatchGeometry dispatch_geometry(const ModelSpec& model, const ParallelConfig& parallel,
                                   const TrainingShape& training, const PlanOptions& options) {
  if (!model.is_moe()) {
    throw InputError("model.moe", fmt::format("\"{}\" is a dense model; the dispatcher "
                                              "simulation needs num_experts > 0",
                                              model.name));
  }
  if (parallel.ep < 1 || model.moe.num_experts % parallel.ep != 0) {
    throw InputError("parallel.ep", fmt::format("{} does not divide num_experts {}", parallel.ep,
                                                model.moe.num_experts));
  }
  if (parallel.etp < 1)
    throw InputError("parallel.etp", fmt::format("{} is not a positive integer", parallel.etp));
  const std::int64_t tokens = training.micro_batch_size * training.seq_length;
  const std::int64_t splits = parallel.tp * parallel.cp;
  if (tokens <= 0 || splits <= 0 || tokens % splits != 0) {
    throw InputError(
        "training.seq_length",
        fmt::format("micro_batch_size·seq_length {} does not split over TP·CP {}", tokens, splits));
  }
  if (model.moe.router_topk < 1 ||
      model.moe.router_topk > std::min<std::int64_t>(64, model.moe.num_experts)) {
    throw InputError("model.moe.moe_router_topk",
                     fmt::format("{} is outside 1..min(64, num_experts {})", model.moe.router_topk,
                                 model.moe.num_experts));
  }
  DispatchGeometry geometry;
  geometry.num_experts = model.moe.num_experts;
  geometry.topk = model.moe.router_topk;
  geometry.hidden_size = model.hidden_size;
  geometry.tokens_per_rank = tokens / splits;
  geometry.etp = parallel.etp;
  geometry.ep = parallel.ep;
  geometry.dispatcher = options.dispatcher;
  return geometry;
}

LayerDispatch dispatch_layer(std::span<const SourceRouting> sources,
                             const DispatchGeometry& geometry, const PlanOptions& options) {
  assert(static_cast<std::int64_t>(sources.size()) == geometry.group_size());
  LayerAccumulator accumulator(geometry, 0, 0);
  for (std::size_t moe_rank = 0; moe_rank < sources.size(); ++moe_rank) {
    accumulator.add_source(static_cast<std::int64_t>(moe_rank),
                           apply_token_dropping(sources[moe_rank], geometry.num_experts, options));
  }
  return accumulator.finish();
}

LayerDispatch simulate_layer_dispatch(const DispatchGeometry& geometry, const PlanOptions& options,
                                      const RoutingSpec& spec,
                                      std::span<const double> expert_shares, std::int64_t layer,
                                      std::int64_t micro_batch, std::uint64_t seed) {
  LayerAccumulator accumulator(geometry, layer, micro_batch);
  for (std::int64_t moe_rank = 0; moe_rank < geometry.group_size(); ++moe_rank) {
    const SourceRouting routing =
        route_source_tokens(spec, expert_shares, geometry.tokens_per_rank, geometry.topk,
                            moe_rank * geometry.tokens_per_rank,
                            routing_seed(seed, static_cast<std::uint64_t>(layer),
                                         static_cast<std::uint64_t>(micro_batch),
                                         static_cast<std::uint64_t>(moe_rank)));
    accumulator.add_source(moe_rank, apply_token_dropping(routing, geometry.num_experts, options));
  }
  return accumulator.finish();
}

DispatchResult simulate_dispatch(const ModelSpec& model, const ParallelConfig& parallel,
                                 const TrainingShape& training, const PlanOptions& options,
                                 const RoutingSpec& spec, int micro_batches, std::uint64_t seed) {
  if (micro_batches < 1)
    throw InputError("micro_batches", fmt::format("{} is not a positive integer", micro_batches));
  DispatchResult result;
  result.geometry = dispatch_geometry(model, parallel, training, options);
  result.samples.reserve(static_cast<std::size_t>(model.num_moe_layers() * micro_batches));
  std::int64_t routed = 0;
  std::int64_t dropped = 0;
  double load_factor_sum = 0;
  for (std::int64_t layer = 0; layer < model.num_layers; ++layer) {
    if (!model.is_moe_layer(layer))
      continue;
    const std::vector<double> shares = draw_expert_shares(
        spec, result.geometry.num_experts,
        routing_seed(seed, static_cast<std::uint64_t>(layer), kLayerStream, kLayerStream));
    for (std::int64_t micro_batch = 0; micro_batch < micro_batches; ++micro_batch) {
      LayerDispatch sample =
          simulate_layer_dispatch(result.geometry, options, spec, shares, layer, micro_batch, seed);
      load_factor_sum += sample.load_factor;
      result.max_load_factor = std::max(result.max_load_factor, sample.load_factor);
      result.max_computed_rows = std::max(result.max_computed_rows, sample.max_computed_rows());
      result.padding_rows += sample.padding_rows;
      routed += sample.routed_choices;
      dropped += sample.dropped_choices;
      result.samples.push_back(std::move(sample));
    }
  }
  if (!result.samples.empty())
    result.mean_load_factor = load_factor_sum / static_cast<double>(result.samples.size());
  result.dropped_fraction =
      routed > 0 ? static_cast<double>(dropped) / static_cast<double>(routed) : 0.0;
  return result;
}

} // namespace foldplan
