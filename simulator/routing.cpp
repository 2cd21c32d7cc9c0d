// Token routing distributions: parsing the spec, the per-layer expert shares, and each source
// rank's top-k picks with their router probabilities.
#include "simulator/routing.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <numeric>
#include <random>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "core/file_io.hpp"
#include "core/json_object.hpp"

namespace foldplan {
namespace {

constexpr const char* kAllowedSpecs =
    "balanced, uniform, zipf:S, dirichlet:ALPHA or a histogram .json file";

// A uniform double in (0, 1) from the top 53 bits of the engine, the same on every library.
double open_unit_interval(std::mt19937_64& engine) {
  return (static_cast<double>(engine() >> 11) + 0.5) * 0x1.0p-53;
}

// An index in [0, bound) by rejection, free of modulo bias and library-independent.
std::uint64_t uniform_index(std::mt19937_64& engine, std::uint64_t bound) {
  const std::uint64_t limit =
      std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % bound;
  std::uint64_t draw = engine();
  while (draw >= limit)
    draw = engine();
  return draw % bound;
}

double parse_positive_parameter(const std::string& text, std::size_t prefix_length,
                                const std::string& field) {
  const std::string number = text.substr(prefix_length);
  std::size_t consumed = 0;
  double value = 0;
  try {
    value = std::stod(number, &consumed);
  } catch (const std::exception&) {
    consumed = 0;
  }
  if (number.empty() || consumed != number.size() || !std::isfinite(value) || value <= 0) {
    throw InputError(field, fmt::format("\"{}\": \"{}\" is not a positive number", text, number));
  }
  return value;
}

bool looks_like_path(const std::string& text) {
  return text.find('/') != std::string::npos ||
         (text.size() >= 5 && text.compare(text.size() - 5, 5, ".json") == 0);
}

std::vector<double> normalised(std::vector<double> shares) {
  const double total = std::accumulate(shares.begin(), shares.end(), 0.0);
  for (double& share : shares)
    share /= total;
  return shares;
}

// k distinct experts in proportion to `cumulative_share` (sequential sampling without
// replacement). Rejection is fast for all but the most concentrated shares; after a bounded number
// of repeats the exact renormalised scan takes over, and when no share is left (fewer than k
// experts with a positive share) the remaining experts are equally likely, as a top-k router
// must still pick k distinct ones.
void pick_distinct_experts(std::span<const double> cumulative_share, std::int64_t topk,
                           std::mt19937_64& engine, std::span<std::int32_t> picks) {
  constexpr int kRejectionAttempts = 32;
  const auto num_experts = static_cast<std::int64_t>(cumulative_share.size());
  const double total = cumulative_share.back();
  const auto already_picked = [&](std::int64_t count, std::int32_t expert) {
    return std::find(picks.begin(), picks.begin() + count, expert) != picks.begin() + count;
  };
  const auto share_of = [&](std::int64_t expert) {
    return cumulative_share[expert] - (expert == 0 ? 0.0 : cumulative_share[expert - 1]);
  };
  for (std::int64_t pick = 0; pick < topk; ++pick) {
    bool found = false;
    for (int attempt = 0; attempt < kRejectionAttempts && !found; ++attempt) {
      const double target = open_unit_interval(engine) * total;
      const auto position =
          std::upper_bound(cumulative_share.begin(), cumulative_share.end(), target);
      if (position == cumulative_share.end())
        continue;
      const auto expert = static_cast<std::int32_t>(position - cumulative_share.begin());
      if (!already_picked(pick, expert)) {
        picks[pick] = expert;
        found = true;
      }
    }
    if (found)
      continue;
    double remaining = 0;
    for (std::int64_t expert = 0; expert < num_experts; ++expert) {
      if (!already_picked(pick, static_cast<std::int32_t>(expert)))
        remaining += share_of(expert);
    }
    if (remaining > 0) {
      double target = open_unit_interval(engine) * remaining;
      std::int32_t chosen = -1;
      for (std::int64_t expert = 0; expert < num_experts; ++expert) {
        if (already_picked(pick, static_cast<std::int32_t>(expert)) || share_of(expert) <= 0)
          continue;
        chosen = static_cast<std::int32_t>(expert);
        target -= share_of(expert);
        if (target < 0)
          break;
      }
      picks[pick] = chosen;
    } else {
      auto slot = static_cast<std::int64_t>(
          uniform_index(engine, static_cast<std::uint64_t>(num_experts - pick)));
      for (std::int64_t expert = 0; expert < num_experts; ++expert) {
        if (already_picked(pick, static_cast<std::int32_t>(expert)))
          continue;
        if (slot-- == 0) {
          picks[pick] = static_cast<std::int32_t>(expert);
          break;
        }
      }
    }
  }
}

// Router probabilities of one token's picks: a softmax over k Gumbel logits, sorted so that the
// first pick (the most likely expert under Plackett–Luce) gets the highest probability.
void fill_pick_probs(std::int64_t topk, std::mt19937_64& engine, std::span<float> probs) {
  std::array<double, 64> logits{};
  assert(topk <= static_cast<std::int64_t>(logits.size()));
  for (std::int64_t pick = 0; pick < topk; ++pick)
    logits[pick] = -std::log(-std::log(open_unit_interval(engine)));
  std::sort(logits.begin(), logits.begin() + topk, std::greater<>());
  double normaliser = 0;
  for (std::int64_t pick = 0; pick < topk; ++pick)
    normaliser += std::exp(logits[pick] - logits[0]);
  for (std::int64_t pick = 0; pick < topk; ++pick)
    probs[pick] = static_cast<float>(std::exp(logits[pick] - logits[0]) / normaliser);
}

} // namespace

std::string to_string(RoutingKind kind) {
  switch (kind) {
  case RoutingKind::balanced:
    return "balanced";
  case RoutingKind::uniform:
    return "uniform";
  case RoutingKind::zipf:
    return "zipf";
  case RoutingKind::dirichlet:
    return "dirichlet";
  case RoutingKind::histogram:
    return "histogram";
  }
  return "unknown";
}

std::vector<double> expert_share_from_json(const nlohmann::json& json, const std::string& path) {
  JsonObject object(json, path);
  const nlohmann::json& list = object.array("expert_share");
  const std::string field = object.field("expert_share");
  if (list.empty())
    throw InputError(field, "[] is empty; it needs one share per expert");
  std::vector<double> shares;
  shares.reserve(list.size());
  for (std::size_t index = 0; index < list.size(); ++index) {
    const std::string element_field = fmt::format("{}[{}]", field, index);
    const double share = json_to_number(list[index], element_field);
    if (!std::isfinite(share) || share < 0)
      throw InputError(element_field, fmt::format("{} is not a non-negative number", share));
    shares.push_back(share);
  }
  object.reject_unknown_keys();
  if (std::accumulate(shares.begin(), shares.end(), 0.0) <= 0)
    throw InputError(field, "the shares sum to 0; at least one must be positive");
  return normalised(std::move(shares));
}

nlohmann::json expert_share_to_json(std::span<const double> expert_share) {
  return {{"expert_share", std::vector<double>(expert_share.begin(), expert_share.end())}};
}

void write_expert_histogram(const std::string& path, std::span<const double> expert_share) {
  write_file_atomically(path, expert_share_to_json(expert_share).dump(2) + "\n");
}

RoutingSpec parse_routing_spec(const std::string& text, const std::string& field) {
  RoutingSpec spec;
  spec.text = text;
  if (text == "balanced") {
    spec.kind = RoutingKind::balanced;
  } else if (text == "uniform") {
    spec.kind = RoutingKind::uniform;
  } else if (text.starts_with("zipf:")) {
    spec.kind = RoutingKind::zipf;
    spec.zipf_exponent = parse_positive_parameter(text, 5, field);
  } else if (text.starts_with("dirichlet:")) {
    spec.kind = RoutingKind::dirichlet;
    spec.dirichlet_alpha = parse_positive_parameter(text, 10, field);
  } else if (looks_like_path(text)) {
    spec.kind = RoutingKind::histogram;
    spec.expert_share = expert_share_from_json(read_json_file(text), text);
  } else {
    throw InputError(field,
                     fmt::format("\"{}\" is not a routing distribution: {}", text, kAllowedSpecs));
  }
  return spec;
}

// splitmix64 (Steele, Lea and Flood 2014) over the stream coordinates: nearby coordinates give
// unrelated engine seeds.
std::uint64_t routing_seed(std::uint64_t seed, std::uint64_t layer, std::uint64_t micro_batch,
                           std::uint64_t source_rank) {
  const auto mix = [](std::uint64_t value) {
    value += 0x9e3779b97f4a7c15ULL;
    value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
    value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
    return value ^ (value >> 31);
  };
  std::uint64_t state = mix(seed);
  state = mix(state ^ layer);
  state = mix(state ^ micro_batch);
  return mix(state ^ source_rank);
}

std::vector<double> draw_expert_shares(const RoutingSpec& spec, std::int64_t num_experts,
                                       std::uint64_t layer_seed, const std::string& field) {
  assert(num_experts > 0);
  const auto count = static_cast<std::size_t>(num_experts);
  std::mt19937_64 engine(layer_seed);
  switch (spec.kind) {
  case RoutingKind::balanced:
  case RoutingKind::uniform:
    return std::vector<double>(count, 1.0 / static_cast<double>(num_experts));
  case RoutingKind::zipf: {
    std::vector<std::size_t> expert_of_rank(count);
    std::iota(expert_of_rank.begin(), expert_of_rank.end(), std::size_t{0});
    for (std::size_t index = count - 1; index > 0; --index) // Fisher–Yates
      std::swap(expert_of_rank[index], expert_of_rank[uniform_index(engine, index + 1)]);
    std::vector<double> shares(count);
    for (std::size_t rank = 0; rank < count; ++rank)
      shares[expert_of_rank[rank]] = std::pow(static_cast<double>(rank + 1), -spec.zipf_exponent);
    return normalised(std::move(shares));
  }
  case RoutingKind::dirichlet: {
    // Dirichlet(α) = independent Gamma(α, 1) draws, normalised.
    std::gamma_distribution<double> gamma(spec.dirichlet_alpha, 1.0);
    std::vector<double> shares(count);
    for (double& share : shares)
      share = gamma(engine);
    if (std::accumulate(shares.begin(), shares.end(), 0.0) <= 0) {
      // A very small α can underflow every draw; the limit is all mass on one expert.
      shares[uniform_index(engine, count)] = 1.0;
    }
    return normalised(std::move(shares));
  }
  case RoutingKind::histogram:
    if (static_cast<std::int64_t>(spec.expert_share.size()) != num_experts) {
      throw InputError(field, fmt::format("\"{}\" has {} expert shares, the model has {} experts",
                                          spec.text, spec.expert_share.size(), num_experts));
    }
    return spec.expert_share;
  }
  return {};
}

SourceRouting route_source_tokens(const RoutingSpec& spec, std::span<const double> expert_shares,
                                  std::int64_t num_tokens, std::int64_t topk,
                                  std::int64_t global_token_offset, std::uint64_t source_seed) {
  const auto num_experts = static_cast<std::int64_t>(expert_shares.size());
  assert(topk > 0 && topk <= num_experts && topk <= 64);
  SourceRouting routing;
  routing.num_tokens = num_tokens;
  routing.topk = topk;
  const auto choices = static_cast<std::size_t>(num_tokens * topk);
  routing.experts.resize(choices);
  routing.probs.resize(choices);

  if (spec.kind == RoutingKind::balanced) {
    // Consecutive picks of consecutive tokens walk the experts in order, so T·k picks cover
    // every expert T·k/E times; k ≤ E keeps one token's picks distinct.
    const float equal_prob = 1.0f / static_cast<float>(topk);
    for (std::int64_t token = 0; token < num_tokens; ++token) {
      for (std::int64_t pick = 0; pick < topk; ++pick) {
        const std::int64_t choice = token * topk + pick;
        routing.experts[choice] =
            static_cast<std::int32_t>(((global_token_offset + token) * topk + pick) % num_experts);
        routing.probs[choice] = equal_prob;
      }
    }
    return routing;
  }

  std::vector<double> cumulative_share(expert_shares.size());
  std::partial_sum(expert_shares.begin(), expert_shares.end(), cumulative_share.begin());
  std::mt19937_64 engine(source_seed);
  for (std::int64_t token = 0; token < num_tokens; ++token) {
    const auto first = static_cast<std::size_t>(token * topk);
    const auto picks = std::span(routing.experts).subspan(first, static_cast<std::size_t>(topk));
    pick_distinct_experts(cumulative_share, topk, engine, picks);
    fill_pick_probs(topk, engine,
                    std::span(routing.probs).subspan(first, static_cast<std::size_t>(topk)));
  }
  return routing;
}

std::vector<std::int64_t> tokens_per_expert(const SourceRouting& routing,
                                            std::int64_t num_experts) {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(num_experts), 0);
  for (const std::int32_t expert : routing.experts)
    ++counts[static_cast<std::size_t>(expert)];
  return counts;
}

} // namespace foldplan
