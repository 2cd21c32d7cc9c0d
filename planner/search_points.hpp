// The shape of a search space for plotting it: each timed point's (step time, memory per GPU),
// as a bounded, thread-count-independent sample plus the exact Pareto front — the points no other
// point beats on both time and memory — so a report can draw millions of points from a few KB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "parallel/parallel_config.hpp"
#include "parallel/plan_options.hpp"

namespace foldplan {

struct SearchPoint {
  double step_time_s = 0;
  double peak_memory_bytes = 0;
  bool folded = false;
  std::int64_t index = 0; // position in the search space: orders samples reproducibly
  ParallelConfig parallel;
  std::int64_t micro_batch_size = 1;
  Recompute recompute = Recompute::none;
};

// Timed points kept in a search's sample at most (a scatter plot needs no more).
inline constexpr std::size_t kMaxSampledPoints = 4000;

// Whether `a` is at least as good as `b` on both axes and better on one.
bool dominates(const SearchPoint& a, const SearchPoint& b);

// Adds `point` to `front` (a Pareto front: no member dominates another) unless a member dominates
// it or has its exact (time, memory); removes the members it dominates.
void add_to_pareto_front(std::vector<SearchPoint>& front, const SearchPoint& point);

// The Pareto front of `points`, sorted by step time (so memory falls along it).
std::vector<SearchPoint> pareto_front(const std::vector<SearchPoint>& points);

// A uniform sample of the timed points that does not depend on the number of threads: every
// point gets a pseudo-random key from its space index and the sample is the `keep` smallest keys
// (a bottom-k sample), so workers trim their own and the merge trims again.
std::uint64_t sample_key(std::int64_t index);
// Keeps the `keep` points of `sample` with the smallest sample_key, in space-index order.
void trim_sample(std::vector<SearchPoint>& sample, std::size_t keep);

} // namespace foldplan
