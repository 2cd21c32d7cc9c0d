// The MoE layer's checks against the CPU reference; each names its first counterexample.
#include "runtime/moe_layer_checks.hpp"

#include <algorithm>
#include <cmath>
#include <future>
#include <map>
#include <span>

#include <fmt/format.h>

namespace foldplan::runtime {

namespace {

using kernels::MoeDispatchPlan;
using kernels::MoeRouting;

std::size_t at(std::int64_t index) {
  return static_cast<std::size_t>(index);
}

MoeLayerCheck passed(std::string name, std::string detail = "") {
  return {std::move(name), true, std::move(detail)};
}
MoeLayerCheck failed(std::string name, std::string detail) {
  return {std::move(name), false, std::move(detail)};
}

// The routing the GPU chose, as the reference's type: later checks judge the GPU's plan on the
// GPU's own routing, so float noise in the softmax cannot masquerade as a dropping bug.
MoeRouting gpu_routing(const MoeLayerSnapshot& gpu) {
  return {gpu.tokens, gpu.top_k, gpu.topk_experts, gpu.topk_probs};
}

MoeDispatchPlan gpu_plan(const MoeLayerSnapshot& gpu) {
  MoeDispatchPlan plan;
  plan.choice_row.assign(gpu.choice_row.begin(), gpu.choice_row.end());
  plan.row_token.assign(gpu.row_token.begin(), gpu.row_token.end());
  plan.row_prob = gpu.row_prob;
  return plan;
}

} // namespace

std::vector<std::int64_t> sample_tokens(std::int64_t tokens, std::int64_t count) {
  std::vector<std::int64_t> sampled;
  const std::int64_t n = std::min(tokens, count);
  for (std::int64_t i = 0; i < n; ++i)
    sampled.push_back(i * tokens / n);
  return sampled;
}

MoeLayerCheck check_router_logits(const MoeLayerSnapshot& gpu,
                                  const std::vector<std::int64_t>& sampled) {
  const std::string name = "router logits match the CPU GEMM";
  double worst = 0;
  for (const std::int64_t token : sampled) {
    const std::span<const float> row(gpu.x.data() + token * gpu.hidden, at(gpu.hidden));
    const std::vector<float> expected =
        kernels::reference_router_logits(row, gpu.experts, gpu.seed);
    for (int expert = 0; expert < gpu.experts; ++expert) {
      const float got = gpu.logits[at(token * gpu.experts + expert)];
      const float want = expected[static_cast<std::size_t>(expert)];
      // bf16 inputs are exact; only the fp32 accumulation order differs.
      const double error = std::abs(static_cast<double>(got) - want);
      worst = std::max(worst, error);
      if (!(error <= 1e-3 * std::max(1.0, std::abs(static_cast<double>(want)))))
        return failed(name,
                      fmt::format("token {} expert {}: GPU {} CPU {}", token, expert, got, want));
    }
  }
  return passed(name, fmt::format("{} tokens, max |error| {:.2e}", sampled.size(), worst));
}

MoeLayerCheck check_topk_softmax(const MoeLayerSnapshot& gpu) {
  const std::string name = "softmax/top-k matches the CPU on the GPU's logits";
  const MoeRouting expected =
      kernels::reference_topk_softmax(gpu.logits, gpu.tokens, gpu.top_k, gpu.expert_bias);
  double worst = 0;
  for (std::size_t choice = 0; choice < expected.experts.size(); ++choice) {
    const auto token = static_cast<std::int64_t>(choice) / gpu.top_k;
    if (gpu.topk_experts[choice] != expected.experts[choice])
      return failed(name, fmt::format("token {} pick {}: GPU expert {} CPU expert {}", token,
                                      choice % static_cast<std::size_t>(gpu.top_k),
                                      gpu.topk_experts[choice], expected.experts[choice]));
    const double error = std::abs(static_cast<double>(gpu.topk_probs[choice]) -
                                  static_cast<double>(expected.probs[choice]));
    worst = std::max(worst, error);
    if (!(error <= 1e-5))
      return failed(name, fmt::format("token {} expert {}: GPU prob {} CPU prob {}", token,
                                      expected.experts[choice], gpu.topk_probs[choice],
                                      expected.probs[choice]));
  }
  return passed(name,
                fmt::format("{} choices, max |prob error| {:.2e}", expected.experts.size(), worst));
}

MoeLayerCheck check_dropped_tokens(const MoeLayerSnapshot& gpu, const MoeCapacityRule& rule) {
  const std::string name = "dropped tokens are exactly the capacity rule's";
  const MoeDispatchPlan expected = kernels::reference_dispatch_plan(
      gpu_routing(gpu), gpu.experts, rule.capacity_factor, rule.policy, rule.pad_to_capacity);
  for (int expert = 0; expert < gpu.experts; ++expert) {
    const auto e = static_cast<std::size_t>(expert);
    if (gpu.kept_per_expert[e] != expected.kept_per_expert[e] ||
        gpu.rows_per_expert[e] != expected.rows_per_expert[e])
      return failed(name, fmt::format("expert {}: GPU keeps {} of {} rows, the rule {} of {}",
                                      expert, gpu.kept_per_expert[e], gpu.rows_per_expert[e],
                                      expected.kept_per_expert[e], expected.rows_per_expert[e]));
  }
  for (std::size_t choice = 0; choice < expected.choice_row.size(); ++choice) {
    const bool gpu_kept = gpu.choice_row[choice] >= 0;
    const bool rule_kept = expected.choice_row[choice] >= 0;
    if (gpu_kept != rule_kept)
      return failed(name, fmt::format("token {} → expert {} (prob {}): GPU {}, the rule {}",
                                      choice / static_cast<std::size_t>(gpu.top_k),
                                      gpu.topk_experts[choice], gpu.topk_probs[choice],
                                      gpu_kept ? "keeps it" : "drops it",
                                      rule_kept ? "keeps it" : "drops it"));
    if (gpu.choice_row[choice] != expected.choice_row[choice])
      return failed(name, fmt::format("token {} → expert {}: GPU row {}, Megatron's order row {}",
                                      choice / static_cast<std::size_t>(gpu.top_k),
                                      gpu.topk_experts[choice], gpu.choice_row[choice],
                                      expected.choice_row[choice]));
  }
  for (std::int64_t row = 0; row < expected.rows(); ++row) {
    if (gpu.row_token[at(row)] != expected.row_token[at(row)] ||
        gpu.row_prob[at(row)] != expected.row_prob[at(row)])
      return failed(name, fmt::format("row {}: GPU token {} prob {}, the rule token {} prob {}",
                                      row, gpu.row_token[at(row)], gpu.row_prob[at(row)],
                                      expected.row_token[at(row)], expected.row_prob[at(row)]));
  }
  const std::string capacity =
      expected.capacity ? fmt::format("capacity {}", *expected.capacity) : "dropless";
  return passed(name, fmt::format("{}: {} of {} choices dropped, {} padding rows", capacity,
                                  expected.dropped_choices, expected.choice_row.size(),
                                  expected.padding_rows));
}

MoeLayerCheck check_permute(const MoeLayerSnapshot& gpu) {
  const std::string name = "permute groups the kept tokens by expert in token order";
  const std::vector<float> expected = kernels::reference_permute(gpu.x, gpu.hidden, gpu_plan(gpu));
  if (expected.size() != gpu.permuted.size())
    return failed(name,
                  fmt::format("GPU {} rows, plan {} rows", gpu.permuted.size() / at(gpu.hidden),
                              expected.size() / at(gpu.hidden)));
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (gpu.permuted[i] != expected[i])
      return failed(name, fmt::format("row {} column {}: GPU {}, token {} has {}",
                                      i / at(gpu.hidden), i % at(gpu.hidden), gpu.permuted[i],
                                      gpu.row_token[i / at(gpu.hidden)], expected[i]));
  }
  return passed(name, fmt::format("{} rows bit-identical", expected.size() / at(gpu.hidden)));
}

MoeLayerCheck check_unpermute_permute_identity(const MoeLayerSnapshot& gpu) {
  const std::string name = "unpermute(permute(x)) restores every kept token";
  std::int64_t kept_tokens = 0;
  for (std::int64_t token = 0; token < gpu.tokens; ++token) {
    int copies = 0;
    for (int j = 0; j < gpu.top_k; ++j)
      copies += gpu.choice_row[at(token * gpu.top_k + j)] >= 0 ? 1 : 0;
    kept_tokens += copies > 0 ? 1 : 0;
    // Each kept copy brings x back once: c·x is exact in fp32 for bf16 x and small c.
    for (std::int64_t h = 0; h < gpu.hidden; ++h) {
      const float want = static_cast<float>(copies) * gpu.x[at(token * gpu.hidden + h)];
      const float got = gpu.restored[at(token * gpu.hidden + h)];
      if (got != want)
        return failed(name, fmt::format("token {} column {} ({} kept copies): restored {}, "
                                        "expected {}",
                                        token, h, copies, got, want));
    }
  }
  return passed(name, fmt::format("{} of {} tokens kept at least once, all restored exactly",
                                  kept_tokens, gpu.tokens));
}

MoeLayerCheck check_dispatch_combine_conservation(const MoeLayerSnapshot& gpu) {
  const std::string name = "dispatch/combine conserve tokens";
  if (gpu.rows_sent_in_group != gpu.rows_received_in_group)
    return failed(name, fmt::format("the EP group sent {} rows but received {}",
                                    gpu.rows_sent_in_group, gpu.rows_received_in_group));
  if (gpu.round_trip.size() != gpu.permuted.size())
    return failed(name, fmt::format("{} rows came back of {} sent",
                                    gpu.round_trip.size() / at(gpu.hidden),
                                    gpu.permuted.size() / at(gpu.hidden)));
  for (std::size_t i = 0; i < gpu.permuted.size(); ++i) {
    if (gpu.round_trip[i] != gpu.permuted[i])
      return failed(name,
                    fmt::format("row {} column {} came back as {}, sent {}", i / at(gpu.hidden),
                                i % at(gpu.hidden), gpu.round_trip[i], gpu.permuted[i]));
  }
  return passed(name, fmt::format("{} rows sent = received over EP; this rank's {} rows return "
                                  "bit-identical",
                                  gpu.rows_sent_in_group, gpu.permuted.size() / at(gpu.hidden)));
}

MoeLayerCheck check_combined_output(const MoeLayerSnapshot& gpu,
                                    const std::vector<std::int64_t>& sampled) {
  const std::string name = "combined output matches the CPU reference";
  // Group the sampled tokens' kept choices by expert, so each expert's weights are drawn once.
  std::map<int, std::vector<std::size_t>> choices_of_expert;
  for (const std::int64_t token : sampled)
    for (int j = 0; j < gpu.top_k; ++j) {
      const std::size_t choice = at(token * gpu.top_k + j);
      if (gpu.choice_row[choice] >= 0)
        choices_of_expert[gpu.topk_experts[choice]].push_back(choice);
    }
  std::vector<std::future<std::vector<float>>> outputs;
  for (const auto& entry : choices_of_expert) {
    // Named copies: clang 14 cannot capture structured bindings (C++20 allows it).
    const auto expert = entry.first;
    const auto& choices = entry.second;
    outputs.push_back(std::async(std::launch::async, [&gpu, expert, &choices] {
      std::vector<float> rows;
      for (const std::size_t choice : choices) {
        const auto token = static_cast<std::int64_t>(choice) / gpu.top_k;
        rows.insert(rows.end(), gpu.x.begin() + token * gpu.hidden,
                    gpu.x.begin() + (token + 1) * gpu.hidden);
      }
      return kernels::reference_expert_ffn(rows, gpu.hidden, gpu.ffn_hidden, expert, gpu.gated,
                                           gpu.seed);
    }));
  }
  std::map<std::int64_t, std::vector<double>> expected;
  for (const std::int64_t token : sampled)
    expected[token].assign(at(gpu.hidden), 0.0);
  std::size_t next = 0;
  for (const auto& [expert, choices] : choices_of_expert) {
    const std::vector<float> rows = outputs[next++].get();
    for (std::size_t i = 0; i < choices.size(); ++i) {
      const auto token = static_cast<std::int64_t>(choices[i]) / gpu.top_k;
      for (std::int64_t h = 0; h < gpu.hidden; ++h)
        expected[token][at(h)] +=
            static_cast<double>(gpu.topk_probs[choices[i]]) * rows[i * at(gpu.hidden) + at(h)];
    }
  }
  double worst_relative = 0;
  for (const auto& [token, want] : expected) {
    double square_sum = 0;
    for (const double value : want)
      square_sum += value * value;
    const double rms = std::sqrt(square_sum / static_cast<double>(want.size()));
    for (std::int64_t h = 0; h < gpu.hidden; ++h) {
      const double got = gpu.output[at(token * gpu.hidden + h)];
      const double error = std::abs(got - want[at(h)]);
      // bf16 storage of fc1, the activation, fc2 and the output: ~2^-8 relative each.
      const double tolerance = 0.02 * rms + 0.02 * std::abs(want[at(h)]);
      if (rms > 0)
        worst_relative = std::max(worst_relative, error / rms);
      if (!(error <= tolerance))
        return failed(name, fmt::format("token {} column {}: GPU {}, CPU {:.6g} (row rms {:.3g})",
                                        token, h, got, want[at(h)], rms));
    }
  }
  return passed(
      name, fmt::format("{} tokens, max |error| / row rms {:.2e}", sampled.size(), worst_relative));
}

std::vector<MoeLayerCheck> check_moe_layer(const MoeLayerSnapshot& gpu, const MoeCapacityRule& rule,
                                           std::int64_t reference_tokens) {
  const std::vector<std::int64_t> sampled = sample_tokens(gpu.tokens, reference_tokens);
  return {check_router_logits(gpu, sampled),     check_topk_softmax(gpu),
          check_dropped_tokens(gpu, rule),       check_permute(gpu),
          check_unpermute_permute_identity(gpu), check_dispatch_combine_conservation(gpu),
          check_combined_output(gpu, sampled)};
}

} // namespace foldplan::runtime
