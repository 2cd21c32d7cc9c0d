// The MoE layer's CPU reference: plain loops, written for obviousness, not speed.
#include "kernels/moe_reference.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <numeric>

#include "core/expert_capacity.hpp"
#include "kernels/moe_random.hpp"

namespace foldplan::kernels {

std::vector<float> reference_router_logits(std::span<const float> token, int experts,
                                           std::uint64_t seed) {
  const auto hidden = static_cast<std::int64_t>(token.size());
  const float scale = moe_weight_scale(hidden);
  std::vector<float> logits(static_cast<std::size_t>(experts));
  for (int expert = 0; expert < experts; ++expert) {
    double sum = 0;
    for (std::int64_t h = 0; h < hidden; ++h) {
      const auto index = static_cast<std::uint64_t>(expert * hidden + h);
      sum += static_cast<double>(token[static_cast<std::size_t>(h)]) *
             moe_random_value(seed, moe_router_stream(), index, scale);
    }
    logits[static_cast<std::size_t>(expert)] = static_cast<float>(sum);
  }
  return logits;
}

std::vector<float> moe_skew_bias(int experts, double skew) {
  std::vector<float> bias(static_cast<std::size_t>(experts));
  for (int expert = 0; expert < experts; ++expert)
    bias[static_cast<std::size_t>(expert)] = static_cast<float>(skew * std::log(expert + 1.0));
  return bias;
}

MoeRouting reference_topk_softmax(std::span<const float> logits, std::int64_t tokens, int top_k,
                                  std::span<const float> expert_bias) {
  const auto experts = static_cast<int>(expert_bias.size());
  assert(top_k > 0 && top_k <= experts);
  MoeRouting routing{tokens, top_k, {}, {}};
  routing.experts.reserve(static_cast<std::size_t>(tokens * top_k));
  routing.probs.reserve(static_cast<std::size_t>(tokens * top_k));
  std::vector<float> biased(static_cast<std::size_t>(experts));
  std::vector<int> order(static_cast<std::size_t>(experts));
  std::vector<float> chosen(static_cast<std::size_t>(top_k));
  for (std::int64_t token = 0; token < tokens; ++token) {
    for (int expert = 0; expert < experts; ++expert) {
      const auto e = static_cast<std::size_t>(expert);
      biased[e] = logits[static_cast<std::size_t>(token * experts + expert)] - expert_bias[e];
    }
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int left, int right) {
      return biased[static_cast<std::size_t>(left)] > biased[static_cast<std::size_t>(right)];
    });
    for (int j = 0; j < top_k; ++j)
      chosen[static_cast<std::size_t>(j)] =
          biased[static_cast<std::size_t>(order[static_cast<std::size_t>(j)])];
    // Softmax over the chosen logits, the largest (the first) subtracted for stability.
    const float largest = chosen.front();
    float total = 0;
    for (float& value : chosen) {
      value = std::exp(value - largest);
      total += value;
    }
    for (int j = 0; j < top_k; ++j) {
      routing.experts.push_back(order[static_cast<std::size_t>(j)]);
      routing.probs.push_back(chosen[static_cast<std::size_t>(j)] / total);
    }
  }
  return routing;
}

MoeDispatchPlan reference_dispatch_plan(const MoeRouting& routing, int experts,
                                        std::optional<double> capacity_factor, MoeDropPolicy policy,
                                        bool pad_to_capacity) {
  const auto num_experts = static_cast<std::size_t>(experts);
  const auto choices = routing.experts.size();
  // Each expert's choices in token order.
  std::vector<std::vector<std::int64_t>> choices_of_expert(num_experts);
  for (std::size_t choice = 0; choice < choices; ++choice)
    choices_of_expert[static_cast<std::size_t>(routing.experts[choice])].push_back(
        static_cast<std::int64_t>(choice));

  MoeDispatchPlan plan;
  plan.kept_per_expert.assign(num_experts, 0);
  plan.rows_per_expert.assign(num_experts, 0);
  plan.choice_row.assign(choices, -1);
  if (capacity_factor)
    plan.capacity = expert_capacity(routing.tokens, routing.top_k, experts, *capacity_factor);
  for (std::size_t expert = 0; expert < num_experts; ++expert) {
    std::vector<std::int64_t> kept = choices_of_expert[expert];
    if (plan.capacity && static_cast<std::int64_t>(kept.size()) > *plan.capacity) {
      if (policy == MoeDropPolicy::probs)
        std::stable_sort(kept.begin(), kept.end(), [&](std::int64_t left, std::int64_t right) {
          return routing.probs[static_cast<std::size_t>(left)] >
                 routing.probs[static_cast<std::size_t>(right)];
        });
      plan.dropped_choices += static_cast<std::int64_t>(kept.size()) - *plan.capacity;
      kept.resize(static_cast<std::size_t>(*plan.capacity));
      std::sort(kept.begin(), kept.end()); // back to token order
    }
    for (const std::int64_t choice : kept) {
      plan.choice_row[static_cast<std::size_t>(choice)] = plan.rows();
      plan.row_token.push_back(choice / routing.top_k);
      plan.row_prob.push_back(routing.probs[static_cast<std::size_t>(choice)]);
    }
    plan.kept_per_expert[expert] = static_cast<std::int64_t>(kept.size());
    std::int64_t rows = plan.kept_per_expert[expert];
    if (plan.capacity && pad_to_capacity) {
      for (; rows < *plan.capacity; ++rows) {
        plan.row_token.push_back(-1);
        plan.row_prob.push_back(0);
        ++plan.padding_rows;
      }
    }
    plan.rows_per_expert[expert] = rows;
  }
  return plan;
}

std::vector<float> reference_permute(std::span<const float> tokens, std::int64_t hidden,
                                     const MoeDispatchPlan& plan) {
  std::vector<float> rows(static_cast<std::size_t>(plan.rows() * hidden), 0.0f);
  for (std::int64_t row = 0; row < plan.rows(); ++row) {
    const std::int64_t token = plan.row_token[static_cast<std::size_t>(row)];
    if (token < 0)
      continue;
    std::copy_n(tokens.begin() + token * hidden, hidden, rows.begin() + row * hidden);
  }
  return rows;
}

std::vector<float> reference_unpermute(std::span<const float> rows, std::int64_t hidden,
                                       const MoeRouting& routing, const MoeDispatchPlan& plan,
                                       bool weighted) {
  std::vector<float> out(static_cast<std::size_t>(routing.tokens * hidden), 0.0f);
  for (std::size_t choice = 0; choice < plan.choice_row.size(); ++choice) {
    const std::int64_t row = plan.choice_row[choice];
    if (row < 0)
      continue;
    const float weight = weighted ? routing.probs[choice] : 1.0f;
    const auto token = static_cast<std::int64_t>(choice) / routing.top_k;
    for (std::int64_t h = 0; h < hidden; ++h)
      out[static_cast<std::size_t>(token * hidden + h)] +=
          weight * rows[static_cast<std::size_t>(row * hidden + h)];
  }
  return out;
}

namespace {

float activation(float value, bool silu) {
  if (silu)
    return value / (1.0f + std::exp(-value));
  return 0.5f * value * (1.0f + std::erf(value * static_cast<float>(M_SQRT1_2)));
}

} // namespace

std::vector<float> reference_expert_ffn(std::span<const float> rows, std::int64_t hidden,
                                        std::int64_t ffn_hidden, int expert, bool gated,
                                        std::uint64_t seed) {
  const auto n = static_cast<std::int64_t>(rows.size()) / hidden;
  const std::int64_t fc1_rows = gated ? 2 * ffn_hidden : ffn_hidden;
  const float fc1_scale = moe_weight_scale(hidden);
  const float fc2_scale = moe_weight_scale(ffn_hidden);
  const auto fc1_stream = moe_fc1_stream(static_cast<std::uint64_t>(expert));
  const auto fc2_stream = moe_fc2_stream(static_cast<std::uint64_t>(expert));
  // fc1 output [n, fc1_rows], rounded to bf16 as cuBLAS stores it; one weight row at a time.
  std::vector<float> fc1(static_cast<std::size_t>(n * fc1_rows));
  std::vector<float> weight_row(static_cast<std::size_t>(hidden));
  for (std::int64_t f = 0; f < fc1_rows; ++f) {
    for (std::int64_t h = 0; h < hidden; ++h)
      weight_row[static_cast<std::size_t>(h)] =
          moe_random_value(seed, fc1_stream, static_cast<std::uint64_t>(f * hidden + h), fc1_scale);
    for (std::int64_t i = 0; i < n; ++i) {
      double sum = 0;
      for (std::int64_t h = 0; h < hidden; ++h)
        sum += static_cast<double>(rows[static_cast<std::size_t>(i * hidden + h)]) *
               weight_row[static_cast<std::size_t>(h)];
      fc1[static_cast<std::size_t>(i * fc1_rows + f)] = round_to_bf16(static_cast<float>(sum));
    }
  }
  std::vector<float> activated(static_cast<std::size_t>(n * ffn_hidden));
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t f = 0; f < ffn_hidden; ++f) {
      const float first = fc1[static_cast<std::size_t>(i * fc1_rows + f)];
      const float value = gated ? activation(first, true) *
                                      fc1[static_cast<std::size_t>(i * fc1_rows + ffn_hidden + f)]
                                : activation(first, false);
      activated[static_cast<std::size_t>(i * ffn_hidden + f)] = round_to_bf16(value);
    }
  }
  std::vector<float> out(static_cast<std::size_t>(n * hidden));
  weight_row.resize(static_cast<std::size_t>(ffn_hidden));
  for (std::int64_t h = 0; h < hidden; ++h) {
    for (std::int64_t f = 0; f < ffn_hidden; ++f)
      weight_row[static_cast<std::size_t>(f)] = moe_random_value(
          seed, fc2_stream, static_cast<std::uint64_t>(h * ffn_hidden + f), fc2_scale);
    for (std::int64_t i = 0; i < n; ++i) {
      double sum = 0;
      for (std::int64_t f = 0; f < ffn_hidden; ++f)
        sum += static_cast<double>(activated[static_cast<std::size_t>(i * ffn_hidden + f)]) *
               weight_row[static_cast<std::size_t>(f)];
      out[static_cast<std::size_t>(i * hidden + h)] = static_cast<float>(sum);
    }
  }
  return out;
}

} // namespace foldplan::kernels
