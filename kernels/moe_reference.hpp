// The MoE layer on the CPU, one plain loop per operation, as the GPU path is checked against it:
// router logits, softmax/top-k, Megatron's capacity dropping and padding, permute, unpermute with
// the weighted combine, and one expert's FFN. Host-only: CI tests it without a GPU.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "kernels/bf16_rounding.hpp"

namespace foldplan::kernels {

// One token's router logits x·W_rᵀ (W_r [experts, hidden] drawn from `seed`), summed in double.
std::vector<float> reference_router_logits(std::span<const float> token, int experts,
                                           std::uint64_t seed);

// The routing decisions, token-major: choice c = token·top_k + j, the j-th highest score first.
struct MoeRouting {
  std::int64_t tokens = 0;
  int top_k = 0;
  std::vector<std::int32_t> experts; // [tokens·top_k]
  std::vector<float> probs;          // [tokens·top_k], each token's top_k sum to 1
};

// The skewed-routing bias: expert e's logit is lowered by skew·log(e+1), so low experts are hot.
// Computed once in float, so the GPU and the reference subtract the same values.
std::vector<float> moe_skew_bias(int experts, double skew);

// Megatron's default score function (softmax, not pre-softmax): top-k over the logits minus
// `expert_bias` (ties to the lower expert), then a softmax over the k chosen logits. `logits` is
// [tokens, experts], `expert_bias` [experts].
MoeRouting reference_topk_softmax(std::span<const float> logits, std::int64_t tokens, int top_k,
                                  std::span<const float> expert_bias);

enum class MoeDropPolicy { probs, position }; // --moe-token-drop-policy

// Where each routed choice goes in the permuted buffer: rows grouped by expert, each expert's rows
// in token order (Megatron's permute: routing_map.T masked_select), kept rows first, then the
// padding rows up to capacity when padding.
struct MoeDispatchPlan {
  std::optional<std::int64_t> capacity;      // none: dropless
  std::vector<std::int64_t> kept_per_expert; // routed choices that survive
  std::vector<std::int64_t> rows_per_expert; // rows sent: kept plus padding
  std::vector<std::int64_t> choice_row;      // [tokens·top_k]: row, or -1 when dropped
  std::vector<std::int64_t> row_token;       // [rows]: source token, or -1 for a padding row
  std::vector<float> row_prob;               // [rows]: the choice's prob, 0 for padding
  std::int64_t dropped_choices = 0;
  std::int64_t padding_rows = 0;
  std::int64_t rows() const { return static_cast<std::int64_t>(row_token.size()); }
};

// Megatron's router.apply_router_token_dropping on this rank's tokens: each expert keeps at most
// expert_capacity(tokens, top_k, experts, capacity_factor) choices — its highest-probability ones
// (ties to the earlier token) under "probs", its first ones under "position". Padding rows are
// zero rows with prob 0 (Megatron pads with copies of unrouted tokens of prob 0: the same rows
// and traffic, and the zero weight makes their values irrelevant).
MoeDispatchPlan reference_dispatch_plan(const MoeRouting& routing, int experts,
                                        std::optional<double> capacity_factor, MoeDropPolicy policy,
                                        bool pad_to_capacity);

// rows[r] = tokens[row_token[r]], zero for padding. `tokens` is [tokens, hidden].
std::vector<float> reference_permute(std::span<const float> tokens, std::int64_t hidden,
                                     const MoeDispatchPlan& plan);

// out[t] = Σ over t's kept choices of weight·rows[choice_row], weight = prob when `weighted`,
// else 1. `rows` is [plan.rows(), hidden].
std::vector<float> reference_unpermute(std::span<const float> rows, std::int64_t hidden,
                                       const MoeRouting& routing, const MoeDispatchPlan& plan,
                                       bool weighted);

// Expert `expert`'s FFN on `rows` [n, hidden]: fc1 (W1 [2·ffn or ffn, hidden]), SwiGLU when gated
// (silu(first half)·second half) else GELU, fc2 (W2 [hidden, ffn]); weights drawn from `seed`.
// Intermediates are rounded to bf16 where the GPU stores them in bf16.
std::vector<float> reference_expert_ffn(std::span<const float> rows, std::int64_t hidden,
                                        std::int64_t ffn_hidden, int expert, bool gated,
                                        std::uint64_t seed);

} // namespace foldplan::kernels
