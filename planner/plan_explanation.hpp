// Why a plan costs what it costs: one layer of each kind term by term, every pipeline stage, each
// communication group with the links its traffic crosses, the memory of each stage against the
// GPU, and the next-best plans of the same search space with what separates them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "costmodel/cost_context.hpp"
#include "costmodel/memory_model.hpp"
#include "costmodel/phase_cost.hpp"
#include "costmodel/step_estimate.hpp"
#include "parallel/plan.hpp"
#include "planner/search.hpp"

namespace foldplan {

struct LayerExplanation {
  std::string kind; // "dense" or "moe"
  std::int64_t count = 0;
  PassCost cost; // one layer, one micro-batch, on one rank
};

// One communication family of the plan as rank 0's group sits on the cluster.
struct GroupExplanation {
  std::string name;       // "tp", "ep", "dp-cp", …
  std::int64_t ranks = 0; // group size
  std::int64_t nodes = 0;
  std::string links;   // "NVLink", "NVLink + InfiniBand", "NVLink + InfiniBand + spine"
  std::string carries; // what travels on it
  double step_s = 0;   // its time in the step (exposed or not), where the estimate keeps it
};

struct Alternative {
  RankedPlan plan;
  double step_time_delta_s = 0;    // alternative − this plan
  std::string differences;         // "TP2→TP1, CP1→CP2"
  std::string biggest_term_change; // "tp_comm −68.6 ms"
};

struct PlanExplanation {
  StepEstimate estimate;
  std::vector<LayerExplanation> layers;
  std::vector<GroupExplanation> groups;
  std::vector<MemoryBreakdown> stage_memory; // one per pipeline rank
  std::vector<Alternative> alternatives;     // best first, this plan excluded
};

// `alternatives`: how many of the best plans of the same model, cluster, batch and options to
// compare with (0: none; the search costs about as much as `foldplan search`).
PlanExplanation explain_plan(const Plan& plan, const CostContext& context,
                             std::int64_t alternatives);

nlohmann::json explanation_to_json(const PlanExplanation& explanation);

} // namespace foldplan
