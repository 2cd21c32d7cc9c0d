// Megatron moe_utils.get_capacity.
#include "core/expert_capacity.hpp"

#include <cassert>
#include <cmath>

namespace foldplan {

std::int64_t expert_capacity(std::int64_t num_tokens, std::int64_t topk, std::int64_t num_experts,
                             double capacity_factor) {
  assert(num_experts > 0 && capacity_factor > 0);
  const double expected = static_cast<double>(num_tokens * topk) / static_cast<double>(num_experts);
  return static_cast<std::int64_t>(std::ceil(expected * capacity_factor));
}

} // namespace foldplan
