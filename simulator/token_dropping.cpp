// Per-source-rank expert capacity: which routed tokens survive and how many padding rows are sent.
#include "simulator/token_dropping.hpp"

#include <algorithm>

namespace foldplan {

DroppedRouting apply_token_dropping(const SourceRouting& routing, std::int64_t num_experts,
                                    const PlanOptions& options) {
  const auto experts = static_cast<std::size_t>(num_experts);
  DroppedRouting result;
  result.routed_choices = routing.num_tokens * routing.topk;
  result.kept.assign(routing.experts.size(), 1);
  result.kept_per_expert = tokens_per_expert(routing, num_experts);
  if (!options.capacity_factor) {
    result.rows_per_expert = result.kept_per_expert;
    return result;
  }
  const std::int64_t capacity =
      expert_capacity(routing.num_tokens, routing.topk, num_experts, *options.capacity_factor);
  result.capacity = capacity;

  // Each over-full expert keeps `capacity` of its choices, listed in token order.
  std::vector<std::vector<std::int64_t>> choices_of_expert(experts);
  for (std::size_t expert = 0; expert < experts; ++expert) {
    if (result.kept_per_expert[expert] > capacity)
      choices_of_expert[expert].reserve(static_cast<std::size_t>(result.kept_per_expert[expert]));
  }
  for (std::size_t choice = 0; choice < routing.experts.size(); ++choice) {
    const auto expert = static_cast<std::size_t>(routing.experts[choice]);
    if (result.kept_per_expert[expert] > capacity)
      choices_of_expert[expert].push_back(static_cast<std::int64_t>(choice));
  }
  for (std::size_t expert = 0; expert < experts; ++expert) {
    std::vector<std::int64_t>& choices = choices_of_expert[expert];
    if (choices.empty())
      continue;
    auto first_dropped = choices.begin() + capacity;
    if (options.drop_policy == DropPolicy::probs) {
      // Token order breaks ties, so equal probabilities fall back to "position".
      std::stable_sort(choices.begin(), choices.end(), [&](std::int64_t left, std::int64_t right) {
        return routing.probs[left] > routing.probs[right];
      });
    }
    for (auto dropped = first_dropped; dropped != choices.end(); ++dropped)
      result.kept[static_cast<std::size_t>(*dropped)] = 0;
    result.dropped_choices += static_cast<std::int64_t>(choices.end() - first_dropped);
    result.kept_per_expert[expert] = capacity;
  }

  result.rows_per_expert = result.kept_per_expert;
  if (options.pad_to_capacity) {
    for (std::size_t expert = 0; expert < experts; ++expert) {
      result.padding_rows += capacity - result.kept_per_expert[expert];
      result.rows_per_expert[expert] = capacity;
    }
  }
  return result;
}

} // namespace foldplan
