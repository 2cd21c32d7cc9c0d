// Bounds on what `simulate`, `trace` and the search's re-ranking may lower and play, so that a
// huge world or model is refused up front with one line instead of running for hours or
// exhausting memory. The event simulation plays every op of every rank (event_simulation.hpp), so
// its work and memory grow with GPUs × layers per stage × micro-batches; the dispatcher
// simulation routes every token of an ETP×EP group through every MoE layer for each sampled
// micro-batch and keeps an EP×EP all-to-all matrix per layer and sample. The limits and the
// measurements they come from are in docs/reliability.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "parallel/plan.hpp"

namespace foldplan {

// GPUs × layers per pipeline stage × micro-batches: the layer passes the event simulation plays.
inline constexpr double kMaxSimulatedLayerPasses = 1e6;
// MoE layers × sampled micro-batches × (routed token choices + all-to-all matrix cells) of the
// ETP×EP group: what the dispatcher simulation computes and holds.
inline constexpr double kMaxDispatchCells = 2e8;

struct SimulationSize {
  double layer_passes = 0;   // GPUs × layers per stage × micro-batches
  double dispatch_cells = 0; // 0 for a dense model
};

// The size of simulating `plan` with `sampled_micro_batches` dispatcher samples.
SimulationSize simulation_size(const Plan& plan, int sampled_micro_batches);

// Why `plan` is over a limit, as the rule of an InputError on field "plan" (which names the
// sizes, their product and the limit); nullopt when it is within both.
std::optional<std::string> simulation_size_violation(const Plan& plan, int sampled_micro_batches);

// Throws InputError("plan", …) when simulation_size_violation says so.
void check_simulation_size(const Plan& plan, int sampled_micro_batches);

} // namespace foldplan
