// A plan lowered under a routing distribution (the --routing of `foldplan simulate` and `trace`):
// the dispatcher simulated for every MoE layer and every micro-batch of the step, and the step
// program lowered with those loads, so each EP rank carries its own all-to-all splits and expert
// rows. Balanced routing needs no dispatcher for the program: it lowers as lower_plan(plan), one
// program per stage.
#pragma once

#include <cstdint>
#include <optional>

#include "core/step_program.hpp"
#include "parallel/plan.hpp"
#include "simulator/dispatch_simulation.hpp"
#include "simulator/routing.hpp"

namespace foldplan {

struct RoutedStep {
  StepProgram program;
  // MoE models: the dispatcher simulation of every MoE layer for the sampled micro-batches.
  std::optional<DispatchResult> dispatch;
  bool routed_experts = false; // the program carries the routing (all_to_all_v splits)
};

// Micro-batches whose routing is simulated. The routing of each micro-batch is an independent
// draw from one distribution; what skews a layer — which experts are popular — is drawn once per
// layer and is in every sample. A few samples vary the straggler from micro-batch to micro-batch;
// the step's later micro-batches replay them in turn (ExpertLoads), since each sample routes
// every token of an ETP×EP group through every MoE layer and costs about as much as lowering.
inline constexpr int kRoutedSampledMicroBatches = 4;
// Balanced routing: all samples alike; they give the dropped fraction and the load factor.
inline constexpr int kBalancedSampledMicroBatches = 2;

// InputError as simulate_dispatch (a histogram whose length is not the expert count).
RoutedStep lower_routed_plan(const Plan& plan, const RoutingSpec& routing,
                             std::uint64_t seed = kDefaultRoutingSeed);

} // namespace foldplan
