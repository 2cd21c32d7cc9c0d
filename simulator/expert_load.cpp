#include "simulator/expert_load.hpp"

#include <algorithm>
#include <functional>
#include <stdexcept>

namespace foldplan {

ExpertLoads::ExpertLoads(const DispatchResult& dispatch) : dispatch_(dispatch) {
  // simulate_dispatch stores samples MoE-layer-major, then micro-batch.
  std::int64_t last_layer = 0;
  for (std::size_t s = 0; s < dispatch.samples.size(); ++s) {
    const LayerDispatch& sample = dispatch.samples[s];
    if (sample.layer >= static_cast<std::int64_t>(first_sample_of_layer_.size()))
      first_sample_of_layer_.resize(static_cast<std::size_t>(sample.layer + 1), -1);
    auto& first = first_sample_of_layer_[static_cast<std::size_t>(sample.layer)];
    if (first < 0)
      first = static_cast<std::int64_t>(s);
    last_layer = sample.layer;
  }
  if (!dispatch.samples.empty()) {
    sampled_micro_batches_ = static_cast<std::int64_t>(dispatch.samples.size()) -
                             first_sample_of_layer_[static_cast<std::size_t>(last_layer)];
  }
  for (std::int64_t first : first_sample_of_layer_) {
    if (first >= 0 && (first % std::max<std::int64_t>(1, sampled_micro_batches_) != 0 ||
                       dispatch.samples[static_cast<std::size_t>(first)].micro_batch != 0)) {
      throw std::invalid_argument("dispatch samples are not layer-major with equal micro-batches");
    }
  }
}

std::optional<ExpertLoad> ExpertLoads::at(std::int64_t layer, std::int64_t micro_batch,
                                          ExpertRank rank) const {
  if (layer < 0 || layer >= static_cast<std::int64_t>(first_sample_of_layer_.size()))
    return std::nullopt;
  const std::int64_t first = first_sample_of_layer_[static_cast<std::size_t>(layer)];
  if (first < 0)
    return std::nullopt;
  const LayerDispatch& sample =
      dispatch_.samples[static_cast<std::size_t>(first + micro_batch % sampled_micro_batches_)];
  const DispatchGeometry& geometry = dispatch_.geometry;
  ExpertLoad load;
  load.rows_computed = sample.computed_rows_per_ep_rank[static_cast<std::size_t>(rank.ep)];
  if (sample.ep_alltoall.empty())
    return load;
  // Each ETP index of the tp_ep group runs its own EP all-to-all.
  const AllToAllMatrix& matrix = sample.ep_alltoall[static_cast<std::size_t>(rank.etp)];
  load.rows_to_peer.resize(static_cast<std::size_t>(geometry.ep));
  load.rows_from_peer.resize(static_cast<std::size_t>(geometry.ep));
  for (std::int64_t peer = 0; peer < geometry.ep; ++peer) {
    load.rows_to_peer[static_cast<std::size_t>(peer)] = matrix.at(rank.ep, peer);
    load.rows_from_peer[static_cast<std::size_t>(peer)] = matrix.at(peer, rank.ep);
    load.rows_sent += matrix.at(rank.ep, peer);
    load.rows_received += matrix.at(peer, rank.ep);
  }
  return load;
}

bool ExpertLoads::uniform() const {
  for (const LayerDispatch& sample : dispatch_.samples) {
    const auto& computed = sample.computed_rows_per_ep_rank;
    if (std::adjacent_find(computed.begin(), computed.end(), std::not_equal_to<>()) !=
        computed.end())
      return false;
    for (const AllToAllMatrix& matrix : sample.ep_alltoall) {
      if (std::adjacent_find(matrix.rows.begin(), matrix.rows.end(), std::not_equal_to<>()) !=
          matrix.rows.end())
        return false;
    }
  }
  return true;
}

} // namespace foldplan
