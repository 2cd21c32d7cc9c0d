// The discrete-event simulation of one training step: plays the step programs of every rank
// against each other — in-order streams, dependencies, collectives that start when the last member
// of the group arrives, send/recv rendezvous — and reports the step time, per-rank stream busy and
// idle time, pipeline bubbles, communication left exposed behind compute, and optionally a
// timeline.
//
// Semantics (every rank is simulated individually, also when ranks share a RankProgram, unless
// the options fold interchangeable ranks, which gives the same result):
// - Each rank has one in-order queue per Stream: the ops of a stream start in program order, one
//   at a time. The op at the head of a stream is issued once all its deps have finished.
// - Compute-like ops (gemm, attention, memory_bound) start when issued and last timer(op, rank).
// - A collective is matched by position: the n-th collective of family group_id in a rank's
//   program (program order) meets the n-th one of every other member of the rank's group in that
//   family. Issued members wait (holding their stream, not counted busy); when the last member
//   arrives all start together and finish together after the longest of the members' timer values.
// - A send from s to d with tag t pairs with a recv on d from s with tag t (the k-th such send with
//   the k-th such recv, program order). Both start when the later side is issued and finish after
//   the longer of the two timer values.
// - Determinism: the event queue orders by (time, sequence number); ranks and streams are visited
//   in ascending order wherever several become ready at once.
// - A program that cannot finish (a collective a member never issues, an unmatched send) is an
//   InputError naming a waiting rank, its op and the rank it waits for.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/step_program.hpp"

namespace foldplan {

// The duration in seconds of `op` when `rank` runs it; the cost model plugs in here.
using OpTimer = std::function<double(const Op& op, std::int64_t rank)>;

inline constexpr std::size_t kStreamCount = 6;
// Position of `stream` in the per-stream arrays below (the enum's declaration order).
constexpr std::size_t stream_index(Stream stream) {
  return static_cast<std::size_t>(stream);
}

struct SimulationOptions {
  // The per-op timeline is one interval per op per rank: large, so only on request.
  bool record_timeline = false;
  // Simulate one rank per RankProgram where the programs' structure allows it (rank_folding.hpp),
  // giving every rank its representative's figures: the same result for a fraction of the work.
  // Only for timers that give every rank of a program the same durations
  // (CostModelOpTimer::ranks_interchangeable() checks that for the cost model).
  bool fold_interchangeable_ranks = false;
};

struct OpInterval {
  double start_s = 0;
  double end_s = 0;
  bool operator==(const OpInterval&) const = default;
};

struct RankSimulation {
  std::int64_t rank = 0;
  double finish_s = 0; // end of the rank's last op
  // Indexed by stream_index: the time an op of the stream was running (a collective or transfer
  // counts from its common start, not from when this rank issued it).
  std::array<double, kStreamCount> busy_s = {};
  // Step time minus compute-stream busy time: idle inside the step and after the rank finishes.
  double compute_idle_s = 0;
  double bubble_fraction = 0; // compute_idle_s / step time
  // Indexed by stream_index, communication streams only (the compute entry stays 0): the time the
  // stream was busy while the compute stream of the same rank was not.
  std::array<double, kStreamCount> exposed_s = {};
  // When recorded: (start, end) of every op, in the order of the rank's program's op list.
  std::vector<OpInterval> timeline;
  bool operator==(const RankSimulation&) const = default;
};

struct SimulationResult {
  double step_time_s = 0;            // the latest finish over ranks
  std::int64_t critical_rank = 0;    // the rank finishing last (the lowest such rank on ties)
  std::vector<RankSimulation> ranks; // indexed by rank
  std::array<double, kStreamCount> mean_exposed_s = {};     // exposed_s averaged over ranks
  std::array<double, kStreamCount> critical_exposed_s = {}; // exposed_s of the critical rank
  double mean_bubble_fraction = 0;
  bool operator==(const SimulationResult&) const = default;
};

// Validates `program` (validate_step_program), then simulates one step. InputError on a deadlock;
// std::invalid_argument when the timer returns a negative or non-finite duration.
SimulationResult simulate_step(const StepProgram& program, const OpTimer& timer,
                               const SimulationOptions& options = {});

} // namespace foldplan
