// The analytic estimate of one training step of a plan: every pipeline stage's per-micro-batch
// cost from its layers, the pipeline schedule (1F1B, or interleaved with VPP), the exposed part of
// data-parallel gradient reduce-scatter and parameter all-gather, and the optimizer step; then
// Megatron's throughput figures and the memory of the most loaded GPU. It is fast enough to run
// for every point of a search (microseconds: no allocation proportional to the cluster size).
#pragma once

#include <string>
#include <vector>

#include "costmodel/cost_context.hpp"
#include "costmodel/phase_cost.hpp"
#include "parallel/plan.hpp"
#include "parallel/prediction.hpp"

namespace foldplan {

struct StageEstimate {
  PassCost layers;            // per micro-batch: this stage's layers (all VPP chunks)
  double pipeline_send_s = 0; // per micro-batch, both directions, when not overlapped
  double grad_reduce_s = 0;   // whole reduce-scatter of this stage's gradients (DP·CP, EDP)
  double param_gather_s = 0;  // whole all-gather of its parameters
  double exposed_dp_s = 0;    // the part of both that compute does not hide
  double optimizer_s = 0;     // Adam over this rank's shard of the optimizer state
  double per_micro_batch_s() const { return layers.total_s() + pipeline_send_s; }
};

struct StepEstimate {
  Prediction prediction;
  std::vector<StageEstimate> stages; // one per pipeline rank
  int critical_stage = 0;            // the stage whose per-micro-batch time paces the pipeline
  int peak_memory_stage = 0;         // the pipeline rank that holds the most memory
  std::int64_t micro_batches = 0;
  double pipeline_s = 0; // the schedule, without DP and optimizer tails
  double bubble_s = 0;
};

// `expert_load_factor`: tokens on the busiest expert rank over the mean (1 = balanced routing).
// The plan must be valid (validate_plan).
StepEstimate estimate_step(const CostContext& context, const Plan& plan,
                           double expert_load_factor = 1.0);

} // namespace foldplan
