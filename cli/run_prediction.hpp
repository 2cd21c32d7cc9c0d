// What `foldplan run` and `validate` put beside their measurements: the cost model's time of every
// op and of the step, with attention priced from foldplan's own kernel (kernels/attention_*.cu,
// what the runtime executes) instead of cuDNN's, which search, estimate and simulate price because
// Megatron runs it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/step_program.hpp"
#include "parallel/plan.hpp"
#include "simulator/event_simulation.hpp"
#include "topologies/gpu_calibration.hpp"

namespace foldplan::cli {

inline constexpr const char* kRunAttentionBackend = "foldplan";

struct RunPredictionOptions {
  // A `foldplan calibrate` output to price with instead of the shipped calibration of the GPU.
  std::optional<GpuCalibration> calibration = std::nullopt;
  bool record_timeline = false; // SimulationOptions::record_timeline, for `validate --trace`
};

struct RunPrediction {
  // Per RankProgram, op id → seconds, on the program's first rank.
  std::vector<std::map<int, double>> op_time_s;
  double step_time_s = 0; // the event simulation of `program` with those times
  // The event simulation itself: every rank's finish time (and timeline when asked for).
  SimulationResult simulation;
  // Set when the calibration has no points of our kernel for the plan's GPU: what priced
  // attention instead (CostContext::attention_fallback).
  std::optional<std::string> attention_note;
  // What priced the ops: "built-in H100-SXM5-80GB", the given calibration's "H100-SXM5-80GB
  // (given)", or "none (physical model)".
  std::string calibration;
};

// `program` is `plan` lowered (lower_routed_plan).
RunPrediction predict_run(const Plan& plan, const StepProgram& program,
                          const RunPredictionOptions& options = {});

} // namespace foldplan::cli
