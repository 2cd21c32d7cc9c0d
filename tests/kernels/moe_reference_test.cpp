// The MoE layer's CPU reference on hand-computed cases, its round-trip invariants, and agreement
// with the dispatcher simulation's token dropping (the same Megatron rule, written for routings).
#include "kernels/moe_reference.hpp"

#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "simulator/routing.hpp"
#include "simulator/token_dropping.hpp"

namespace foldplan::kernels {
namespace {

using Rows = std::vector<std::int64_t>;

// Top-2 of 4 experts on 3 tokens. Token 1 ties experts 2 and 3: the lower one comes first.
const std::vector<float> kLogits = {1, 3, 2, 0, //
                                    0, 0, 5, 5, //
                                    2, 1, 0, -1};
const std::vector<float> kNoBias(4, 0.0f);
// softmax over the two chosen logits 3 and 2 (or 2 and 1): 1/(1+e^-1).
const float kHigh = 1.0f / (1.0f + std::exp(-1.0f));

MoeRouting hand_routing() {
  return reference_topk_softmax(kLogits, 3, 2, kNoBias);
}

TEST(MoeReference, TopTwoOfFourOnThreeTokens) {
  const MoeRouting routing = hand_routing();
  EXPECT_EQ(routing.experts, (std::vector<std::int32_t>{1, 2, 2, 3, 0, 1}));
  const std::vector<float> probs = {kHigh, 1 - kHigh, 0.5f, 0.5f, kHigh, 1 - kHigh};
  for (std::size_t choice = 0; choice < probs.size(); ++choice)
    EXPECT_NEAR(routing.probs[choice], probs[choice], 1e-6) << "choice " << choice;
}

TEST(MoeReference, SkewBiasLowersHighExperts) {
  const std::vector<float> bias = moe_skew_bias(4, 1.0);
  EXPECT_FLOAT_EQ(bias[0], 0.0f);
  EXPECT_FLOAT_EQ(bias[3], std::log(4.0f));
  // Equal logits: the skew alone decides, experts 0 and 1 with probs ∝ 1 and 1/2.
  const MoeRouting routing = reference_topk_softmax(std::vector<float>(4, 0.0f), 1, 2, bias);
  EXPECT_EQ(routing.experts, (std::vector<std::int32_t>{0, 1}));
  EXPECT_NEAR(routing.probs[0], 2.0 / 3.0, 1e-6);
  EXPECT_NEAR(routing.probs[1], 1.0 / 3.0, 1e-6);
}

TEST(MoeReference, DroplessGroupsRowsByExpertInTokenOrder) {
  const MoeDispatchPlan plan =
      reference_dispatch_plan(hand_routing(), 4, std::nullopt, MoeDropPolicy::probs, false);
  EXPECT_FALSE(plan.capacity);
  EXPECT_EQ(plan.rows_per_expert, (Rows{1, 2, 2, 1}));
  // Expert 0: token 2; expert 1: tokens 0, 2; expert 2: tokens 0, 1; expert 3: token 1.
  EXPECT_EQ(plan.row_token, (Rows{2, 0, 2, 0, 1, 1}));
  EXPECT_EQ(plan.choice_row, (Rows{1, 3, 4, 5, 0, 2}));
  EXPECT_EQ(plan.dropped_choices, 0);
}

TEST(MoeReference, CapacityOneDropsTheLowerProbability) {
  // capacity = ceil(3·2/4 · 0.5) = 1. Expert 1 holds token 0 (0.73) and token 2 (0.27): keeps
  // token 0. Expert 2 holds token 0 (0.27) and token 1 (0.5): keeps token 1.
  const MoeDispatchPlan plan =
      reference_dispatch_plan(hand_routing(), 4, 0.5, MoeDropPolicy::probs, false);
  ASSERT_TRUE(plan.capacity);
  EXPECT_EQ(*plan.capacity, 1);
  EXPECT_EQ(plan.kept_per_expert, (Rows{1, 1, 1, 1}));
  EXPECT_EQ(plan.row_token, (Rows{2, 0, 1, 1}));
  EXPECT_EQ(plan.choice_row, (Rows{1, -1, 2, 3, 0, -1}));
  EXPECT_EQ(plan.dropped_choices, 2);
}

TEST(MoeReference, CapacityOneByPositionKeepsTheFirstToken) {
  // Expert 2 now keeps token 0, its first, though token 1 has the higher prob.
  const MoeDispatchPlan plan =
      reference_dispatch_plan(hand_routing(), 4, 0.5, MoeDropPolicy::position, false);
  EXPECT_EQ(plan.row_token, (Rows{2, 0, 0, 1}));
  EXPECT_EQ(plan.choice_row, (Rows{1, 2, -1, 3, 0, -1}));
}

TEST(MoeReference, PaddingFillsEveryExpertToCapacity) {
  // capacity = ceil(1.5) = 2: nothing dropped; experts 0 and 3 get one zero row of prob 0.
  const MoeDispatchPlan plan =
      reference_dispatch_plan(hand_routing(), 4, 1.0, MoeDropPolicy::probs, true);
  EXPECT_EQ(plan.rows_per_expert, (Rows{2, 2, 2, 2}));
  EXPECT_EQ(plan.kept_per_expert, (Rows{1, 2, 2, 1}));
  EXPECT_EQ(plan.row_token, (Rows{2, -1, 0, 2, 0, 1, 1, -1}));
  EXPECT_EQ(plan.row_prob[1], 0.0f);
  EXPECT_EQ(plan.padding_rows, 2);
  const std::vector<float> tokens = {1, 2, 3, 4, 5, 6}; // hidden 2
  const std::vector<float> rows = reference_permute(tokens, 2, plan);
  EXPECT_EQ(rows, (std::vector<float>{5, 6, 0, 0, 1, 2, 5, 6, 1, 2, 3, 4, 3, 4, 0, 0}));
}

std::vector<float> random_tokens(std::int64_t tokens, std::int64_t hidden) {
  std::mt19937 engine(7);
  std::uniform_int_distribution<int> integer(-127, 127);
  std::vector<float> values(static_cast<std::size_t>(tokens * hidden));
  for (float& value : values)
    value = static_cast<float>(integer(engine)) / 128.0f;
  return values;
}

TEST(MoeReference, UnpermuteOfPermuteRestoresKeptTokens) {
  const std::int64_t tokens = 64, hidden = 8;
  std::mt19937 engine(3);
  std::normal_distribution<float> normal;
  std::vector<float> logits(static_cast<std::size_t>(tokens * 8));
  for (float& logit : logits)
    logit = normal(engine);
  const MoeRouting routing = reference_topk_softmax(logits, tokens, 2, moe_skew_bias(8, 1.0));
  const MoeDispatchPlan plan = reference_dispatch_plan(routing, 8, 1.0, MoeDropPolicy::probs, true);
  ASSERT_GT(plan.dropped_choices, 0); // the skew makes low experts overflow
  const std::vector<float> x = random_tokens(tokens, hidden);
  const std::vector<float> rows = reference_permute(x, hidden, plan);
  const std::vector<float> restored = reference_unpermute(rows, hidden, routing, plan, false);
  const std::vector<float> combined = reference_unpermute(rows, hidden, routing, plan, true);
  for (std::int64_t token = 0; token < tokens; ++token) {
    int copies = 0;
    float kept_prob = 0;
    for (int j = 0; j < 2; ++j) {
      const auto choice = static_cast<std::size_t>(token * 2 + j);
      copies += plan.choice_row[choice] >= 0 ? 1 : 0;
      kept_prob += plan.choice_row[choice] >= 0 ? routing.probs[choice] : 0.0f;
    }
    for (std::int64_t h = 0; h < hidden; ++h) {
      const auto i = static_cast<std::size_t>(token * hidden + h);
      EXPECT_EQ(restored[i], static_cast<float>(copies) * x[i]) << "token " << token;
      EXPECT_NEAR(combined[i], kept_prob * x[i], 1e-6) << "token " << token;
    }
  }
}

// The same routings through both implementations of Megatron's rule.
TEST(MoeReference, AgreesWithTheSimulatorsTokenDropping) {
  const std::int64_t tokens = 512, experts = 16;
  const int top_k = 2;
  for (const char* text : {"uniform", "zipf:1.2"}) {
    const RoutingSpec spec = parse_routing_spec(text);
    const std::vector<double> shares = draw_expert_shares(spec, experts, 11);
    const SourceRouting source = route_source_tokens(spec, shares, tokens, top_k, 0, 5);
    const MoeRouting routing{tokens, top_k, source.experts, source.probs};
    for (const double factor : {0.5, 1.0, 1.3}) {
      for (const DropPolicy policy : {DropPolicy::probs, DropPolicy::position}) {
        for (const bool pad : {false, true}) {
          PlanOptions options;
          options.capacity_factor = factor;
          options.drop_policy = policy;
          options.pad_to_capacity = pad;
          const DroppedRouting simulated = apply_token_dropping(source, experts, options);
          const MoeDispatchPlan plan = reference_dispatch_plan(
              routing, static_cast<int>(experts), factor,
              policy == DropPolicy::probs ? MoeDropPolicy::probs : MoeDropPolicy::position, pad);
          SCOPED_TRACE(::testing::Message() << text << " factor " << factor << " "
                                            << to_string(policy) << (pad ? " pad" : ""));
          EXPECT_EQ(plan.capacity, simulated.capacity);
          EXPECT_EQ(plan.kept_per_expert, simulated.kept_per_expert);
          EXPECT_EQ(plan.rows_per_expert, simulated.rows_per_expert);
          EXPECT_EQ(plan.dropped_choices, simulated.dropped_choices);
          EXPECT_EQ(plan.padding_rows, simulated.padding_rows);
          for (std::size_t choice = 0; choice < plan.choice_row.size(); ++choice)
            ASSERT_EQ(plan.choice_row[choice] >= 0, simulated.kept[choice] == 1)
                << "choice " << choice;
        }
      }
    }
  }
}

} // namespace
} // namespace foldplan::kernels
