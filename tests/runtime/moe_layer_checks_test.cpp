// The MoE layer's checks on a snapshot built from the CPU reference itself (so every check must
// pass), then on corrupted copies: each check must catch its fault and name the counterexample.
#include "runtime/moe_layer_checks.hpp"

#include <gtest/gtest.h>

#include "kernels/moe_random.hpp"

namespace foldplan::runtime {
namespace {

using namespace foldplan::kernels;

std::vector<std::int32_t> narrow(const std::vector<std::int64_t>& values) {
  return {values.begin(), values.end()};
}

// What a faultless GPU would have copied back: T 12, H 16, F 8, E 4, top-2, capacity 1.0.
MoeLayerSnapshot faultless(const MoeCapacityRule& rule) {
  MoeLayerSnapshot gpu;
  gpu.tokens = 12;
  gpu.hidden = 16;
  gpu.ffn_hidden = 8;
  gpu.experts = 4;
  gpu.top_k = 2;
  gpu.seed = 5;
  for (std::int64_t i = 0; i < gpu.tokens * gpu.hidden; ++i)
    gpu.x.push_back(moe_random_value(gpu.seed, moe_token_stream(0), static_cast<std::uint64_t>(i),
                                     kMoeTokenScale));
  for (std::int64_t token = 0; token < gpu.tokens; ++token) {
    const std::span<const float> row(gpu.x.data() + token * gpu.hidden, 16);
    for (const float logit : reference_router_logits(row, gpu.experts, gpu.seed))
      gpu.logits.push_back(logit);
  }
  gpu.expert_bias = moe_skew_bias(gpu.experts, 1.0);
  const MoeRouting routing =
      reference_topk_softmax(gpu.logits, gpu.tokens, gpu.top_k, gpu.expert_bias);
  gpu.topk_experts = routing.experts;
  gpu.topk_probs = routing.probs;
  const MoeDispatchPlan plan = reference_dispatch_plan(routing, gpu.experts, rule.capacity_factor,
                                                       rule.policy, rule.pad_to_capacity);
  gpu.kept_per_expert = narrow(plan.kept_per_expert);
  gpu.rows_per_expert = narrow(plan.rows_per_expert);
  gpu.choice_row = narrow(plan.choice_row);
  gpu.row_token = narrow(plan.row_token);
  gpu.row_prob = plan.row_prob;
  gpu.permuted = reference_permute(gpu.x, gpu.hidden, plan);
  gpu.restored = reference_unpermute(gpu.permuted, gpu.hidden, routing, plan, false);
  gpu.round_trip = gpu.permuted;
  gpu.rows_sent_in_group = gpu.rows_received_in_group = plan.rows();
  std::vector<float> expert_out(gpu.permuted.size());
  for (std::int64_t row = 0; row < plan.rows(); ++row) {
    int expert = 0;
    for (std::int64_t before = plan.rows_per_expert[0]; row >= before;
         before += plan.rows_per_expert[static_cast<std::size_t>(expert)])
      ++expert;
    const std::span<const float> input(gpu.permuted.data() + row * gpu.hidden, 16);
    const std::vector<float> out =
        reference_expert_ffn(input, gpu.hidden, gpu.ffn_hidden, expert, gpu.gated, gpu.seed);
    std::copy(out.begin(), out.end(), expert_out.begin() + row * gpu.hidden);
  }
  gpu.output = reference_unpermute(expert_out, gpu.hidden, routing, plan, true);
  return gpu;
}

MoeCapacityRule capacity_one() {
  MoeCapacityRule rule;
  rule.capacity_factor = 1.0;
  return rule;
}

const MoeLayerCheck& named(const std::vector<MoeLayerCheck>& checks, const std::string& prefix) {
  for (const MoeLayerCheck& check : checks)
    if (check.name.rfind(prefix, 0) == 0)
      return check;
  throw std::runtime_error("no check named " + prefix);
}

TEST(MoeLayerChecks, AFaultlessLayerPassesEveryCheck) {
  const MoeLayerSnapshot gpu = faultless(capacity_one());
  const std::vector<MoeLayerCheck> checks = check_moe_layer(gpu, capacity_one(), 100);
  ASSERT_EQ(checks.size(), 7u);
  for (const MoeLayerCheck& check : checks)
    EXPECT_TRUE(check.passed) << check.name << ": " << check.detail;
  EXPECT_NE(named(checks, "dropped").detail.find("capacity 6"), std::string::npos)
      << named(checks, "dropped").detail; // ceil(12·2/4)
}

TEST(MoeLayerChecks, KeepingADroppedTokenIsCaught) {
  MoeLayerSnapshot gpu = faultless(capacity_one());
  // Check the scenario has a drop, then claim the GPU kept it.
  std::size_t dropped = 0;
  while (dropped < gpu.choice_row.size() && gpu.choice_row[dropped] >= 0)
    ++dropped;
  ASSERT_LT(dropped, gpu.choice_row.size()) << "the skewed case must drop something";
  gpu.choice_row[dropped] = 0;
  const MoeLayerCheck check = check_dropped_tokens(gpu, capacity_one());
  EXPECT_FALSE(check.passed);
  EXPECT_NE(check.detail.find("token " + std::to_string(dropped / 2)), std::string::npos)
      << check.detail;
}

TEST(MoeLayerChecks, ADroplessRuleRejectsACappedPlan) {
  const MoeLayerSnapshot gpu = faultless(capacity_one());
  EXPECT_FALSE(check_dropped_tokens(gpu, MoeCapacityRule{}).passed);
}

TEST(MoeLayerChecks, EachCorruptionFailsItsCheck) {
  const MoeLayerSnapshot good = faultless(capacity_one());
  const std::vector<std::int64_t> all = sample_tokens(good.tokens, 100);
  {
    MoeLayerSnapshot gpu = good;
    gpu.logits[5] += 0.5f;
    EXPECT_FALSE(check_router_logits(gpu, all).passed);
  }
  {
    MoeLayerSnapshot gpu = good;
    gpu.topk_probs[3] += 1e-3f;
    EXPECT_FALSE(check_topk_softmax(gpu).passed);
  }
  {
    MoeLayerSnapshot gpu = good;
    gpu.permuted[20] = -gpu.permuted[20] + 1.0f;
    EXPECT_FALSE(check_permute(gpu).passed);
  }
  {
    MoeLayerSnapshot gpu = good;
    gpu.restored[7] += 1.0f / 128;
    const MoeLayerCheck check = check_unpermute_permute_identity(gpu);
    EXPECT_FALSE(check.passed);
    EXPECT_NE(check.detail.find("token 0 column 7"), std::string::npos) << check.detail;
  }
  {
    MoeLayerSnapshot gpu = good;
    gpu.rows_received_in_group -= 1;
    EXPECT_FALSE(check_dispatch_combine_conservation(gpu).passed);
    gpu = good;
    gpu.round_trip[40] += 1.0f;
    EXPECT_FALSE(check_dispatch_combine_conservation(gpu).passed);
  }
  {
    MoeLayerSnapshot gpu = good;
    gpu.output[33] *= 1.5f;
    gpu.output[33] += 0.5f;
    EXPECT_FALSE(check_combined_output(gpu, all).passed);
  }
}

TEST(MoeLayerChecks, SamplesEvenlySpacedTokens) {
  EXPECT_EQ(sample_tokens(10, 4), (std::vector<std::int64_t>{0, 2, 5, 7}));
  EXPECT_EQ(sample_tokens(3, 8), (std::vector<std::int64_t>{0, 1, 2}));
}

} // namespace
} // namespace foldplan::runtime
