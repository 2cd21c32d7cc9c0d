// The routed MoE work of one rank, as the lowering needs it: for one MoE layer and micro-batch,
// the rows an EP rank dispatches to each peer, the rows it receives, and the rows its local experts
// compute — read from the dispatcher simulation (dispatch_simulation.hpp), so that the step
// program carries the routing skew and the event simulation sees its stragglers.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "simulator/dispatch_simulation.hpp"

namespace foldplan {

// A rank's place in its ETP×EP group: its index in the ETP group and in the EP group. Ranks of
// one pipeline stage with the same place do the same routed work (every EP group of the stage
// replays the one simulated group).
struct ExpertRank {
  std::int64_t etp = 0;
  std::int64_t ep = 0;
  bool operator==(const ExpertRank&) const = default;
};

struct ExpertLoad {
  std::int64_t rows_sent = 0;     // rows dispatched over EP (after dropping, padding included)
  std::int64_t rows_received = 0; // rows received over EP: what the combine sends back
  std::int64_t rows_computed = 0; // rows the local experts compute, after the ETP all-gather
  // alltoall dispatcher: rows to and from each EP peer, in EP group order (own rank included);
  // empty for the allgather dispatcher, which moves the same bytes whatever the routing.
  std::vector<std::int64_t> rows_to_peer;
  std::vector<std::int64_t> rows_from_peer;
  bool operator==(const ExpertLoad&) const = default;
};

// The samples of a DispatchResult indexed by MoE layer and micro-batch. Lowering a step of more
// micro-batches than were sampled reuses them in turn (micro-batch m takes sample m mod sampled).
class ExpertLoads {
public:
  // `dispatch` must outlive this object.
  explicit ExpertLoads(const DispatchResult& dispatch);

  const DispatchGeometry& geometry() const { return dispatch_.geometry; }
  std::int64_t sampled_micro_batches() const { return sampled_micro_batches_; }

  // The load of `rank` in model layer `layer` for `micro_batch`; none for a layer without a
  // sample (dense layers, multi-token-prediction heads).
  std::optional<ExpertLoad> at(std::int64_t layer, std::int64_t micro_batch, ExpertRank rank) const;

  // True when every sample sends the same rows between every pair of EP ranks and every EP rank
  // computes the same rows: the routing is balanced and the balanced lowering is exact.
  bool uniform() const;

private:
  const DispatchResult& dispatch_;
  std::int64_t sampled_micro_batches_ = 0;
  std::vector<std::int64_t> first_sample_of_layer_; // by model layer; -1 when none
};

} // namespace foldplan
