// Per-rank capacity, the two drop policies and padding, on hand-built routings.
#include "simulator/token_dropping.hpp"

#include <gtest/gtest.h>

namespace foldplan {
namespace {

// k = 1: token t goes to experts[t] with probs[t].
SourceRouting top1(std::vector<std::int32_t> experts, std::vector<float> probs) {
  SourceRouting routing;
  routing.num_tokens = static_cast<std::int64_t>(experts.size());
  routing.topk = 1;
  routing.experts = std::move(experts);
  routing.probs = std::move(probs);
  return routing;
}

PlanOptions with_capacity(double factor, DropPolicy policy, bool pad = false) {
  PlanOptions options;
  options.capacity_factor = factor;
  options.drop_policy = policy;
  options.pad_to_capacity = pad;
  return options;
}

TEST(ExpertCapacity, IsMegatronsGetCapacity) {
  EXPECT_EQ(expert_capacity(8, 2, 4, 1.0), 4);
  EXPECT_EQ(expert_capacity(8, 2, 4, 1.1), 5); // ceil(4.4)
  EXPECT_EQ(expert_capacity(4096, 2, 8, 1.0), 1024);
  EXPECT_EQ(expert_capacity(3, 1, 2, 1.0), 2); // ceil(1.5)
}

TEST(TokenDropping, DroplessKeepsEverything) {
  const SourceRouting routing = top1({0, 0, 0, 1}, {0.1f, 0.2f, 0.3f, 0.4f});
  const DroppedRouting dropped = apply_token_dropping(routing, 2, PlanOptions{});
  EXPECT_FALSE(dropped.capacity);
  EXPECT_EQ(dropped.dropped_choices, 0);
  EXPECT_EQ(dropped.rows_per_expert, (std::vector<std::int64_t>{3, 1}));
}

TEST(TokenDropping, PositionPolicyKeepsTheFirstTokens) {
  // capacity = ceil(4·1/2 · 1) = 2; expert 0 has three tokens, the last one goes.
  const SourceRouting routing = top1({0, 1, 0, 0}, {0.1f, 0.9f, 0.3f, 0.9f});
  const DroppedRouting dropped =
      apply_token_dropping(routing, 2, with_capacity(1.0, DropPolicy::position));
  EXPECT_EQ(dropped.capacity, 2);
  EXPECT_EQ(dropped.kept, (std::vector<std::uint8_t>{1, 1, 1, 0}));
  EXPECT_EQ(dropped.dropped_choices, 1);
  EXPECT_EQ(dropped.rows_per_expert, (std::vector<std::int64_t>{2, 1}));
}

TEST(TokenDropping, ProbsPolicyKeepsTheMostConfidentTokens) {
  const SourceRouting routing = top1({0, 1, 0, 0}, {0.1f, 0.9f, 0.3f, 0.9f});
  const DroppedRouting dropped =
      apply_token_dropping(routing, 2, with_capacity(1.0, DropPolicy::probs));
  EXPECT_EQ(dropped.kept, (std::vector<std::uint8_t>{0, 1, 1, 1}));
}

TEST(TokenDropping, ProbsPolicyBreaksTiesByPosition) {
  const SourceRouting routing = top1({0, 0, 0, 1}, {0.5f, 0.5f, 0.5f, 0.5f});
  const DroppedRouting dropped =
      apply_token_dropping(routing, 2, with_capacity(1.0, DropPolicy::probs));
  EXPECT_EQ(dropped.kept, (std::vector<std::uint8_t>{1, 1, 0, 1}));
}

TEST(TokenDropping, NothingDropsWhenCapacityCoversTheLargestLoad) {
  // Loads 3 and 1; capacity ceil(2·1.5) = 3.
  const SourceRouting routing = top1({0, 0, 0, 1}, {0.1f, 0.2f, 0.3f, 0.4f});
  const DroppedRouting dropped =
      apply_token_dropping(routing, 2, with_capacity(1.5, DropPolicy::probs));
  EXPECT_EQ(dropped.capacity, 3);
  EXPECT_EQ(dropped.dropped_choices, 0);
  EXPECT_EQ(dropped.rows_per_expert, (std::vector<std::int64_t>{3, 1}));
}

TEST(TokenDropping, PaddingFillsEveryExpertToCapacity) {
  const SourceRouting routing = top1({0, 0, 0, 0}, {0.1f, 0.2f, 0.3f, 0.4f});
  const DroppedRouting dropped =
      apply_token_dropping(routing, 4, with_capacity(2.0, DropPolicy::position, true));
  EXPECT_EQ(dropped.capacity, 2); // ceil(1 · 2)
  EXPECT_EQ(dropped.rows_per_expert, (std::vector<std::int64_t>{2, 2, 2, 2}));
  EXPECT_EQ(dropped.kept_per_expert, (std::vector<std::int64_t>{2, 0, 0, 0}));
  EXPECT_EQ(dropped.dropped_choices, 2);
  EXPECT_EQ(dropped.padding_rows, 6);
}

} // namespace
} // namespace foldplan
