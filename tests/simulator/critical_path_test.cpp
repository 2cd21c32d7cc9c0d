// A deliberately slow pipeline stage on lowered programs: an OpTimer wrapper makes the compute of
// every micro-batch on stage k twice as slow. Under 1F1B the slowest stage paces the steady state,
// so the step grows by M × the stage's extra time per micro-batch (less at most the later stages'
// share of the fill and drain, which the slow stage hides), the slow stage becomes the one that
// idles least, and every other stage idles that much longer.
#include <algorithm>

#include <gtest/gtest.h>

#include "costmodel/cost_context.hpp"
#include "simulator/event_simulation.hpp"
#include "simulator/lowering.hpp"
#include "simulator/op_timer.hpp"
#include "tests/simulator/test_plans.hpp"
#include "topologies/cluster_spec.hpp"

namespace foldplan {
namespace {

constexpr std::size_t kCompute = stream_index(Stream::compute);

// Mixtral-8x7B on 32 GPUs, TP2 PP4 EP4: 8 layers per stage; DP 4, GBS 64 → 16 micro-batches.
Plan mixtral_pp4() {
  return testing_plans::make_plan("mixtral-8x7b", 32, {.tp = 2, .pp = 4, .ep = 4}, 64);
}

std::int64_t stage_of(const Plan& plan, std::int64_t rank) {
  return rank / (plan.gpus / plan.parallel.pp);
}

// `base`, with every compute-stream op of a micro-batch on `slow_stage` taking `factor` times as
// long.
OpTimer slowed(const Plan& plan, OpTimer base, std::int64_t slow_stage, double factor) {
  return [&plan, base = std::move(base), slow_stage, factor](const Op& op, std::int64_t rank) {
    const double duration = base(op, rank);
    const bool slow =
        op.stream == Stream::compute && op.micro_batch >= 0 && stage_of(plan, rank) == slow_stage;
    return slow ? factor * duration : duration;
  };
}

// The first rank of each stage.
std::vector<const RankSimulation*> stage_leaders(const Plan& plan, const SimulationResult& result) {
  std::vector<const RankSimulation*> leaders;
  for (std::int64_t stage = 0; stage < plan.parallel.pp; ++stage)
    leaders.push_back(
        &result.ranks[static_cast<std::size_t>(stage * plan.gpus / plan.parallel.pp)]);
  return leaders;
}

// How long micro-batch `micro_batch`'s forward and backward took on `stage` in a simulation with
// a timeline: from each pass's first layer op's start to its last one's end, communication
// included.
double pass_spans_s(const Plan& plan, const StepProgram& program, const SimulationResult& simulated,
                    std::int64_t stage, std::int64_t micro_batch) {
  const std::int64_t rank = stage * plan.gpus / plan.parallel.pp;
  const RankProgram& own = *program_of_rank(program, rank);
  const auto& timeline = simulated.ranks[static_cast<std::size_t>(rank)].timeline;
  double span = 0;
  for (const bool backward : {false, true}) {
    double first = simulated.step_time_s, last = 0;
    for (std::size_t position = 0; position < own.ops.size(); ++position) {
      const Op& op = own.ops[position];
      if (op.micro_batch != micro_batch || op.layer < 0 || (op.phase != Phase::forward) != backward)
        continue;
      first = std::min(first, timeline[position].start_s);
      last = std::max(last, timeline[position].end_s);
    }
    span += last - first;
  }
  return span;
}

// Stage k's compute per micro-batch grows by `extra`. Under 1F1B the slowest stage paces the
// steady state, so the step grows by M·extra — less at most the time per micro-batch of the
// stages after k, whose part of the pipeline fill and drain the slow stage can now hide (none
// when k is the last stage).
struct ExpectedGrowth {
  double most_s = 0;
  double least_s = 0;
};
ExpectedGrowth expected_growth(const Plan& plan, const StepProgram& program,
                               const SimulationResult& base, std::int64_t slow_stage,
                               double extra) {
  const std::int64_t micro_batches = num_micro_batches(plan.parallel, plan.training);
  ExpectedGrowth growth{.most_s = static_cast<double>(micro_batches) * extra, .least_s = 0};
  growth.least_s = growth.most_s;
  for (std::int64_t later = slow_stage + 1; later < plan.parallel.pp; ++later)
    growth.least_s -= pass_spans_s(plan, program, base, later, micro_batches / 2);
  return growth;
}

double extra_per_micro_batch(const Plan& plan, const SimulationResult& base,
                             const SimulationResult& slow, std::int64_t stage) {
  const auto leader = static_cast<std::size_t>(stage * plan.gpus / plan.parallel.pp);
  return (slow.ranks[leader].busy_s[kCompute] - base.ranks[leader].busy_s[kCompute]) /
         static_cast<double>(num_micro_batches(plan.parallel, plan.training));
}

TEST(CriticalPath, ASlowStageGrowsTheStepByMicroBatchesTimesItsExtraTime) {
  const Plan plan = mixtral_pp4();
  const StepProgram program = lower_plan(plan);
  const double micro_batches = static_cast<double>(num_micro_batches(plan.parallel, plan.training));
  // Equal stages without communication: decoder-layer compute only, forward 1, backward 2.
  const OpTimer layers_only = [](const Op& op, std::int64_t) {
    if (op.stream != Stream::compute || op.layer < 0)
      return 0.0;
    return op.phase == Phase::forward ? 1.0 : 2.0;
  };
  const SimulationResult base = simulate_step(program, layers_only, {.record_timeline = true});
  for (std::int64_t slow_stage = 0; slow_stage < plan.parallel.pp; ++slow_stage) {
    SCOPED_TRACE(slow_stage);
    const SimulationResult slow = simulate_step(program, slowed(plan, layers_only, slow_stage, 2));
    const double extra = extra_per_micro_batch(plan, base, slow, slow_stage);
    ASSERT_GT(extra, 0);
    const double growth = slow.step_time_s - base.step_time_s;
    const ExpectedGrowth expected = expected_growth(plan, program, base, slow_stage, extra);
    EXPECT_LE(growth, expected.most_s);
    EXPECT_GE(growth, expected.least_s);
    // (PP−1)/M at most: "M × the extra time" within a small tolerance.
    EXPECT_GT(growth, (1 - 3.0 / micro_batches) * expected.most_s);
    if (slow_stage == plan.parallel.pp - 1) {
      EXPECT_DOUBLE_EQ(growth, micro_batches * extra);
    }
    const auto before = stage_leaders(plan, base);
    const auto after = stage_leaders(plan, slow);
    const auto k = static_cast<std::size_t>(slow_stage);
    for (std::size_t stage = 0; stage < after.size(); ++stage) {
      if (stage == k)
        continue;
      // Other stages do the same work in a longer step: their idle grows by the whole growth,
      // and the slow stage idles least.
      EXPECT_DOUBLE_EQ(after[stage]->compute_idle_s - before[stage]->compute_idle_s, growth);
      EXPECT_LT(after[k]->bubble_fraction, after[stage]->bubble_fraction);
    }
  }
}

TEST(CriticalPath, ASlowStageShiftsTheCostModelledStepAsExpected) {
  const Plan plan = mixtral_pp4();
  const StepProgram program = lower_plan(plan);
  const double micro_batches = static_cast<double>(num_micro_batches(plan.parallel, plan.training));
  const CostContext context(plan.cluster, plan.gpus);
  const CostModelOpTimer cost_model(context, program);
  const OpTimer timer = [&](const Op& op, std::int64_t rank) { return cost_model(op, rank); };
  const SimulationResult base = simulate_step(program, timer, {.record_timeline = true});
  for (std::int64_t slow_stage = 0; slow_stage < plan.parallel.pp; ++slow_stage) {
    SCOPED_TRACE(slow_stage);
    const SimulationResult slow = simulate_step(program, slowed(plan, timer, slow_stage, 2));
    const double extra = extra_per_micro_batch(plan, base, slow, slow_stage);
    const double growth = slow.step_time_s - base.step_time_s;
    const ExpectedGrowth expected = expected_growth(plan, program, base, slow_stage, extra);
    // Communication that the slower compute now hides makes the bounds approximate: 1%.
    EXPECT_LE(growth, 1.01 * expected.most_s);
    EXPECT_GE(growth, 0.99 * expected.least_s);
    if (slow_stage == plan.parallel.pp - 1) {
      // The last stage carries the output layer: it paced the pipeline already.
      EXPECT_NEAR(growth, micro_batches * extra, 0.01 * growth);
    }
    const auto before = stage_leaders(plan, base);
    const auto after = stage_leaders(plan, slow);
    const auto k = static_cast<std::size_t>(slow_stage);
    for (std::size_t stage = 0; stage < after.size(); ++stage) {
      if (stage == k)
        continue;
      EXPECT_GT(after[stage]->compute_idle_s - before[stage]->compute_idle_s, 0.9 * growth);
      EXPECT_LT(after[k]->bubble_fraction, after[stage]->bubble_fraction);
    }
  }
}

} // namespace
} // namespace foldplan
