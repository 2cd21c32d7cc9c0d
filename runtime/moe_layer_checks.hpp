// The MoE layer's checks: what one rank's GPU computed, copied back, against the CPU reference
// (kernels/moe_reference.hpp) on the same data. Host-only, so CI tests that each check catches
// what it is meant to catch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernels/moe_reference.hpp"

namespace foldplan::runtime {

// Each check's verdict and, when it fails, the first counterexample in words.
struct MoeLayerCheck {
  std::string name; // "unpermute(permute(x)) restores kept tokens", …
  bool passed = false;
  std::string detail;
};

// One rank's layer as the GPU left it (bf16 tensors widened to float).
struct MoeLayerSnapshot {
  std::int64_t tokens = 0, hidden = 0, ffn_hidden = 0;
  int experts = 0, top_k = 0;
  bool gated = true;
  std::uint64_t seed = 0;
  std::vector<float> x;           // [T, H] the rank's tokens
  std::vector<float> logits;      // [T, E] router output, before the skew
  std::vector<float> expert_bias; // [E] skew subtracted from the logits
  std::vector<std::int32_t> topk_experts;
  std::vector<float> topk_probs;
  std::vector<std::int32_t> kept_per_expert, rows_per_expert, choice_row, row_token;
  std::vector<float> row_prob;
  std::vector<float> permuted;   // [rows, H]
  std::vector<float> restored;   // [T, H] unpermute(permute(x)) with weight 1
  std::vector<float> round_trip; // [rows, H] permuted rows after all-to-all-v there and back
  std::vector<float> output;     // [T, H] the layer's combined output
  std::int64_t rows_sent_in_group = 0, rows_received_in_group = 0; // summed over EP
};

// The rules the plan is checked against.
struct MoeCapacityRule {
  std::optional<double> capacity_factor;
  kernels::MoeDropPolicy policy = kernels::MoeDropPolicy::probs;
  bool pad_to_capacity = false;
};

// Evenly spaced tokens, at most `count` of them (all when fewer).
std::vector<std::int64_t> sample_tokens(std::int64_t tokens, std::int64_t count);

MoeLayerCheck check_router_logits(const MoeLayerSnapshot& gpu,
                                  const std::vector<std::int64_t>& sampled);
MoeLayerCheck check_topk_softmax(const MoeLayerSnapshot& gpu);
MoeLayerCheck check_dropped_tokens(const MoeLayerSnapshot& gpu, const MoeCapacityRule& rule);
MoeLayerCheck check_permute(const MoeLayerSnapshot& gpu);
MoeLayerCheck check_unpermute_permute_identity(const MoeLayerSnapshot& gpu);
MoeLayerCheck check_dispatch_combine_conservation(const MoeLayerSnapshot& gpu);
MoeLayerCheck check_combined_output(const MoeLayerSnapshot& gpu,
                                    const std::vector<std::int64_t>& sampled);

// All of the above, in pipeline order.
std::vector<MoeLayerCheck> check_moe_layer(const MoeLayerSnapshot& gpu, const MoeCapacityRule& rule,
                                           std::int64_t reference_tokens);

} // namespace foldplan::runtime
