// Where the event simulation of a step and the analytic estimate (costmodel/step_estimate.hpp)
// differ, cost term by cost term, with a one-line reason for each difference large enough to
// matter. The estimate's terms are its breakdown: its critical stage's per-micro-batch costs × M,
// the pipeline bubble, the DP and optimizer tail. The simulated terms decompose the step of the
// busiest rank of that same stage: its compute-stream busy time, each communication stream's
// exposed time, the optimizer and data-parallel tail, and the rest — time the rank waited with
// nothing of its own running — as the bubble. Both sides sum to their step times.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/step_program.hpp"
#include "costmodel/step_estimate.hpp"
#include "parallel/plan.hpp"
#include "simulator/event_simulation.hpp"

namespace foldplan {

// A difference below this share of the simulated step is not explained: at that size it is the
// estimate's closed-form treatment of overlaps, not a modelling gap worth a sentence.
inline constexpr double kNotableDifferenceShare = 0.02;

struct TermComparison {
  std::string term; // compute, bubble, tp_comm, cp_comm, ep_comm, pp_comm, host_sync,
                    // dp_comm_and_optimizer
  double simulated_s = 0;
  double estimated_s = 0;
  std::string reason; // empty when the difference is not notable
  double difference_s() const { return simulated_s - estimated_s; }
  bool operator==(const TermComparison&) const = default;
};

struct EstimateComparison {
  double simulated_step_s = 0;
  double estimated_step_s = 0;
  std::int64_t simulated_critical_rank = 0; // the rank finishing last
  std::int64_t simulated_critical_stage = 0;
  std::int64_t compared_rank = 0; // whose simulated terms are compared
  std::int64_t estimated_critical_stage = 0;
  std::vector<TermComparison> terms;
  bool operator==(const EstimateComparison&) const = default;
};

struct ComparedStep {
  const Plan& plan;
  const StepProgram& program;
  const SimulationResult& simulated;
  const OpTimer& timer; // the clock the simulation ran with
  const StepEstimate& estimate;
  bool routed_experts = false;     // the program carries simulated routing (all_to_all_v)
  double expert_load_factor = 1.0; // the load the estimate was given
};

EstimateComparison compare_with_estimate(const ComparedStep& step);

nlohmann::json estimate_comparison_to_json(const EstimateComparison& comparison);

} // namespace foldplan
