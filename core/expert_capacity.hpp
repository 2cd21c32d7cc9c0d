// Megatron's expert capacity (moe_utils.get_capacity), shared by the dispatcher simulation and the
// GPU MoE layer's CPU reference so both drop tokens by the same count.
#pragma once

#include <cstdint>

namespace foldplan {

// ceil(num_tokens·topk/num_experts · capacity_factor), num_tokens being the source rank's local
// tokens: dropping is decided per rank, before any communication.
std::int64_t expert_capacity(std::int64_t num_tokens, std::int64_t topk, std::int64_t num_experts,
                             double capacity_factor);

} // namespace foldplan
