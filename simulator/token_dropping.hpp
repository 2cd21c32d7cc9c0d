// Token dropping with an expert capacity, as Megatron's router applies it: per source rank and
// micro-batch, before any communication (router.py apply_router_token_dropping,
// moe_utils.get_capacity). Dropless when no capacity factor is set.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/expert_capacity.hpp"
#include "parallel/plan_options.hpp"
#include "simulator/routing.hpp"

namespace foldplan {

// What one source rank sends after dropping.
struct DroppedRouting {
  std::optional<std::int64_t> capacity;      // rows per expert allowed; none when dropless
  std::vector<std::uint8_t> kept;            // per choice of the SourceRouting: 1 kept, 0 dropped
  std::vector<std::int64_t> kept_per_expert; // routed tokens that survive, per expert
  std::vector<std::int64_t> rows_per_expert; // rows sent per expert, padding rows included
  std::int64_t routed_choices = 0;           // T·k
  std::int64_t dropped_choices = 0;
  std::int64_t padding_rows = 0;
};

// Applies `options` (capacity_factor, drop_policy, pad_to_capacity) to one source rank's routing.
// "probs" keeps each expert's highest-probability tokens, ties to the earlier token; "position"
// keeps each expert's first tokens. With pad_to_capacity every expert sends exactly `capacity`
// rows, the missing ones as padding (prob 0).
DroppedRouting apply_token_dropping(const SourceRouting& routing, std::int64_t num_experts,
                                    const PlanOptions& options);

} // namespace foldplan
