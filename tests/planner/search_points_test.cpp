#include "planner/search_points.hpp"

#include <algorithm>

#include <gtest/gtest.h>

#include "planner/search.hpp"

namespace foldplan {
namespace {

SearchPoint point(double step_time_s, double memory_bytes, std::int64_t index) {
  SearchPoint result;
  result.step_time_s = step_time_s;
  result.peak_memory_bytes = memory_bytes;
  result.index = index;
  return result;
}

std::vector<std::int64_t> indices(const std::vector<SearchPoint>& points) {
  std::vector<std::int64_t> result;
  for (const SearchPoint& p : points)
    result.push_back(p.index);
  return result;
}

TEST(ParetoFront, KeepsExactlyTheUndominatedPointsFastestFirst) {
  // (time, memory): 0 (1, 50) and 2 (3, 10) and 4 (2, 30) are undominated; 1 (2, 60) is beaten by
  // 0, 3 (4, 40) by 4 and 2, 5 (3, 30) by 4 on time at equal memory.
  const std::vector<SearchPoint> points = {point(1, 50, 0), point(2, 60, 1), point(3, 10, 2),
                                           point(4, 40, 3), point(2, 30, 4), point(3, 30, 5)};
  const std::vector<SearchPoint> front = pareto_front(points);
  EXPECT_EQ(indices(front), (std::vector<std::int64_t>{0, 4, 2}));
  // Along the front, memory falls as time rises.
  for (std::size_t i = 1; i < front.size(); ++i) {
    EXPECT_GT(front[i].step_time_s, front[i - 1].step_time_s);
    EXPECT_LT(front[i].peak_memory_bytes, front[i - 1].peak_memory_bytes);
  }
}

TEST(ParetoFront, DoesNotDependOnTheOrderOfThePoints) {
  std::vector<SearchPoint> points = {point(5, 5, 7), point(5, 5, 3), point(1, 9, 1), point(9, 1, 2),
                                     point(6, 6, 4)};
  const std::vector<std::int64_t> expected = {1, 3, 2}; // of the tie (5, 5), the first index
  EXPECT_EQ(indices(pareto_front(points)), expected);
  std::reverse(points.begin(), points.end());
  EXPECT_EQ(indices(pareto_front(points)), expected);
}

TEST(ParetoFront, DominationNeedsOneStrictAxis) {
  EXPECT_TRUE(dominates(point(1, 2, 0), point(1, 3, 1)));
  EXPECT_TRUE(dominates(point(1, 2, 0), point(2, 2, 1)));
  EXPECT_FALSE(dominates(point(1, 2, 0), point(1, 2, 1)));
  EXPECT_FALSE(dominates(point(1, 3, 0), point(2, 2, 1)));
}

TEST(SearchSample, KeepsTheSmallestKeysInIndexOrder) {
  std::vector<SearchPoint> sample;
  for (std::int64_t i = 0; i < 1000; ++i)
    sample.push_back(point(1, 1, i));
  std::vector<SearchPoint> shuffled(sample.rbegin(), sample.rend());
  trim_sample(sample, 100);
  trim_sample(shuffled, 100);
  ASSERT_EQ(sample.size(), 100u);
  EXPECT_EQ(indices(sample), indices(shuffled));
  EXPECT_TRUE(std::is_sorted(sample.begin(), sample.end(),
                             [](const auto& a, const auto& b) { return a.index < b.index; }));
  // Bottom-k: every kept key is below every dropped one.
  std::uint64_t largest_kept = 0;
  for (const SearchPoint& p : sample)
    largest_kept = std::max(largest_kept, sample_key(p.index));
  std::int64_t below = 0;
  for (std::int64_t i = 0; i < 1000; ++i)
    below += sample_key(i) <= largest_kept ? 1 : 0;
  EXPECT_EQ(below, 100);
}

TEST(SearchSample, SearchKeepsABoundedSampleAndTheExactFront) {
  SearchRequest request;
  request.model = load_model("mixtral-8x7b");
  request.cluster = load_cluster("dgx-h100");
  request.gpus = 32;
  request.training = {.seq_length = 4096, .global_batch_size = 64};
  request.space = default_search_space(request.model, request.cluster, 32, request.training);
  request.simulate_top = 0;
  request.threads = 2;
  const SearchResult result = search(request);
  ASSERT_GT(result.timed, 0);
  EXPECT_EQ(static_cast<std::int64_t>(result.sampled_points.size()),
            std::min<std::int64_t>(result.timed, kMaxSampledPoints));
  ASSERT_FALSE(result.pareto_front.empty());
  // The fastest plan is on the front, and no sampled point beats a front point on both axes.
  EXPECT_DOUBLE_EQ(result.pareto_front.front().step_time_s,
                   result.plans.front().plan.prediction->step_time_s);
  for (const SearchPoint& sampled : result.sampled_points) {
    for (const SearchPoint& member : result.pareto_front)
      EXPECT_FALSE(dominates(sampled, member));
  }
  // The same on one thread: the picture does not depend on the machine.
  request.threads = 1;
  const SearchResult single = search(request);
  EXPECT_EQ(indices(single.sampled_points), indices(result.sampled_points));
  EXPECT_EQ(indices(single.pareto_front), indices(result.pareto_front));
}

} // namespace
} // namespace foldplan
