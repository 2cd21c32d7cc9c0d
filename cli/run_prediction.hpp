// What `foldplan run` puts beside its measurements: the cost model's time of every op and of the
// step, with attention priced from foldplan's own kernel (kernels/attention_*.cu, what the runtime
// executes) instead of cuDNN's, which search, estimate and simulate price because Megatron runs it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/step_program.hpp"
#include "parallel/plan.hpp"

namespace foldplan::cli {

inline constexpr const char* kRunAttentionBackend = "foldplan";

struct RunPrediction {
  // Per RankProgram, op id → seconds, on the program's first rank.
  std::vector<std::map<int, double>> op_time_s;
  double step_time_s = 0; // the event simulation of `program` with those times
  // Set when the calibration has no points of our kernel for the plan's GPU: what priced
  // attention instead (CostContext::attention_fallback).
  std::optional<std::string> attention_note;
};

// `program` is `plan` lowered (lower_routed_plan).
RunPrediction predict_run(const Plan& plan, const StepProgram& program);

} // namespace foldplan::cli
