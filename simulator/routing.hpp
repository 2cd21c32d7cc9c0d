// Token routing distributions for the dispatcher simulation: which k distinct experts each token
// of one source rank picks in one MoE layer and micro-batch, and the router probability of each
// pick (so the "probs" drop policy has something to rank).
//
// Spec strings (the --routing flag):
//   "balanced"          every expert gets exactly T·k/E picks when divisible (deterministic
//                       round robin over the global token index)
//   "uniform"           each token picks k distinct experts uniformly at random
//   "zipf:S"            expert popularity ∝ 1/rank^S, S > 0; which expert holds which rank is a
//                       random permutation drawn once per MoE layer
//   "dirichlet:ALPHA"   per-layer expert shares drawn from Dirichlet(ALPHA), ALPHA > 0
//   a path              (contains '/' or ends in ".json") a histogram file
//                       {"expert_share": [..]} of num_experts non-negative numbers, sum > 0
//
// Determinism: all randomness comes from std::mt19937_64 seeded by routing_seed(), a splitmix64
// mix of (seed, layer, micro-batch, source rank). Uniform draws, shuffles and Gumbel noise are
// computed here from the raw engine output, so they are the same on every standard library; only
// Dirichlet shares use std::gamma_distribution, whose algorithm the library chooses.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace foldplan {

enum class RoutingKind { balanced, uniform, zipf, dirichlet, histogram };

struct RoutingSpec {
  RoutingKind kind = RoutingKind::balanced;
  double zipf_exponent = 0;         // zipf: S
  double dirichlet_alpha = 0;       // dirichlet: ALPHA
  std::vector<double> expert_share; // histogram: normalised to sum 1
  std::string text = "balanced";    // the spec as the user wrote it, for messages

  bool operator==(const RoutingSpec&) const = default;
};

// Parses a spec string; InputError naming `field` and the spec otherwise. A histogram path is
// read here; its length is checked against the model's expert count when it is used.
RoutingSpec parse_routing_spec(const std::string& text, const std::string& field = "--routing");

// The histogram file format: {"expert_share": [..]}. `path` names the file in errors.
std::vector<double> expert_share_from_json(const nlohmann::json& json, const std::string& path);
nlohmann::json expert_share_to_json(std::span<const double> expert_share);
void write_expert_histogram(const std::string& path, std::span<const double> expert_share);

// The seed of one (layer, micro-batch, source rank) stream, so any one of them can be
// regenerated alone. Pass kLayerStream as micro_batch and source_rank for the per-layer draw.
inline constexpr std::uint64_t kLayerStream = ~std::uint64_t{0};
std::uint64_t routing_seed(std::uint64_t seed, std::uint64_t layer, std::uint64_t micro_batch,
                           std::uint64_t source_rank);

// The share of picks each expert attracts in one MoE layer, summing to 1: equal for balanced and
// uniform, permuted Zipf, a Dirichlet draw, or the histogram. InputError naming `field` when a
// histogram's length is not num_experts.
std::vector<double> draw_expert_shares(const RoutingSpec& spec, std::int64_t num_experts,
                                       std::uint64_t layer_seed,
                                       const std::string& field = "--routing");

// The routing decisions of one source rank, token-major: choice c = token·topk + j.
struct SourceRouting {
  std::int64_t num_tokens = 0;
  std::int64_t topk = 0;
  std::vector<std::int32_t> experts; // [num_tokens·topk], k distinct experts per token
  std::vector<float> probs;          // [num_tokens·topk], each token's k probs sum to 1
};

// Routes `num_tokens` tokens of one source rank. Random kinds sample k distinct experts per token
// without replacement in proportion to `expert_shares` (the Plackett–Luce law of top-k over
// log(share) + Gumbel noise); probs are a softmax over k Gumbel logits sorted to match the pick
// order. Balanced routing starts its round robin at `global_token_offset`·topk and gives every
// pick prob 1/k.
SourceRouting route_source_tokens(const RoutingSpec& spec, std::span<const double> expert_shares,
                                  std::int64_t num_tokens, std::int64_t topk,
                                  std::int64_t global_token_offset, std::uint64_t source_seed);

// Picks per expert (the routing map's column sums).
std::vector<std::int64_t> tokens_per_expert(const SourceRouting& routing, std::int64_t num_experts);

std::string to_string(RoutingKind kind);

} // namespace foldplan
