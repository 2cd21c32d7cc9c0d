// The search: walks a SearchSpace, rejects the points Megatron would refuse (counted by reason),
// prunes by memory before timing anything, times every survivor with the analytic estimate on
// every core, and re-ranks the best few with the full discrete-event simulation.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "parallel/plan.hpp"
#include "planner/search_points.hpp"
#include "planner/search_space.hpp"
#include "topologies/gpu_calibration.hpp"

namespace foldplan {

struct SearchRequest {
  ModelSpec model;
  ClusterSpec cluster;
  std::int64_t gpus = 0;
  TrainingShape training; // micro_batch_size comes from the space
  SearchSpace space;
  // Everything the space does not vary: precision, CP communication, overlaps, drop policy.
  PlanOptions options;
  std::int64_t top_k = 10;                   // plans returned, best first
  std::int64_t simulate_top = 3;             // of those, how many the event simulation re-ranks
  unsigned threads = 0;                      // 0: every hardware thread
  std::optional<GpuCalibration> calibration; // default: the shipped one for the cluster's GPU
};

struct RankedPlan {
  Plan plan;                                   // with its analytic prediction
  std::optional<double> simulated_step_time_s; // when the simulation re-ranked it
  // What ranks it: the simulated step time when there is one, else the estimate's.
  double ranking_step_time_s() const;
};

struct SearchResult {
  std::vector<RankedPlan> plans;                // best first, at most top_k
  std::int64_t evaluated = 0;                   // points of the space examined
  std::int64_t timed = 0;                       // of those, valid and fitting: estimated
  std::map<std::string, std::int64_t> rejected; // reason -> points
  double elapsed_s = 0;
  // The timed points for a picture of the space: a uniform sample of at most kMaxSampledPoints
  // (space-index order) and the exact Pareto front of step time and memory (fastest first).
  std::vector<SearchPoint> sampled_points;
  std::vector<SearchPoint> pareto_front;
  // Why some of the best plans kept their analytic estimate: over the event simulation's size
  // limit (simulator/simulation_size.hpp); nullopt when every one asked for was simulated.
  std::optional<std::string> simulation_skipped;
};

// Called from the searching thread with the points examined so far (at most every 100 ms).
using SearchProgress = std::function<void(std::int64_t done, std::int64_t total)>;

// InputError for a request that cannot be searched (no GPUs, an empty dimension, a space over
// kMaxSearchPoints). No valid plan is not an error: `plans` is empty and `rejected` says why.
SearchResult search(const SearchRequest& request, const SearchProgress& progress = {});

// Bounds the work and memory of one search: the space's product of list sizes.
inline constexpr std::int64_t kMaxSearchPoints = 50'000'000;

nlohmann::json search_result_to_json(const SearchResult& result);

// The default space of `plan`'s model, cluster, GPUs and batch with its options and its capacity
// policy (the tokens it drops), folded or not: where the plan's alternatives live.
SearchRequest search_request_around(const Plan& plan, bool folding);

} // namespace foldplan
