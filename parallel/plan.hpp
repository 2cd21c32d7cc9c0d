// Plan: one complete answer — model, cluster, GPU count, batch shape, parallel configuration,
// options and (once known) the prediction — and its versioned JSON ("foldplan.plan/1"). A plan
// file is self-contained: it embeds the model and cluster specs, so it reads the same anywhere.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "models/model_spec.hpp"
#include "parallel/parallel_config.hpp"
#include "parallel/plan_options.hpp"
#include "parallel/prediction.hpp"
#include "topologies/cluster_spec.hpp"

namespace foldplan {

inline constexpr const char* kPlanSchema = "foldplan.plan/1";

struct Plan {
  ModelSpec model;
  ClusterSpec cluster;
  std::int64_t gpus = 0;
  TrainingShape training;
  ParallelConfig parallel;
  PlanOptions options;
  std::optional<Prediction> prediction;
};

// Checks the plan as a whole (sizes against the model, the GPU count, option rules); InputError.
void validate_plan(const Plan& plan);

// Reads and validates; a newer schema, unknown keys, wrong types and inconsistent sizes are
// InputErrors with the JSON path.
Plan plan_from_json(const nlohmann::json& json);
nlohmann::json plan_to_json(const Plan& plan);

Plan load_plan(const std::string& path);
void save_plan(const Plan& plan, const std::string& path); // atomically

} // namespace foldplan
