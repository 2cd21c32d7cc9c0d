// Megatron's EP-communication overlap (--overlap-moe-expert-parallel-comm, combined 1F1B) as
// lowered: one micro-batch's forward interleaved layer by layer with another's backward, the EP
// all-to-alls of each beside the other's compute, one more micro-batch in flight; the programs
// validate, and for an EP-heavy plan exposed EP time and the step fall.
#include <algorithm>
#include <set>
#include <tuple>

#include <gtest/gtest.h>

#include "costmodel/cost_context.hpp"
#include "simulator/event_simulation.hpp"
#include "simulator/lowering.hpp"
#include "simulator/op_timer.hpp"
#include "tests/simulator/test_plans.hpp"
#include "topologies/cluster_spec.hpp"

namespace foldplan {
namespace {

constexpr std::size_t kEpComm = stream_index(Stream::ep_comm);

// make_plan with Megatron's --overlap-moe-expert-parallel-comm on or off.
Plan make_plan(const std::string& model, std::int64_t gpus, const ParallelSizes& sizes,
               std::int64_t global_batch, bool overlap) {
  Plan plan = testing_plans::make_plan(model, gpus, sizes, global_batch);
  plan.options.overlap_moe_expert_parallel_comm = overlap;
  validate_plan(plan);
  return plan;
}

// EP-heavy: Qwen2-57B-A14B (64 small experts, top-8) with EP 16 across two nodes, no pipeline;
// DP 16, GBS 64 → 4 micro-batches.
Plan qwen_ep16(bool overlap) {
  return make_plan("qwen2-57b-a14b", 16, {.tp = 1, .pp = 1, .ep = 16}, 64, overlap);
}

SimulationResult simulate(const Plan& plan, const StepProgram& program) {
  const CostContext context(plan.cluster, plan.gpus);
  const CostModelOpTimer timer(context, program);
  return simulate_step(program, [&](const Op& op, std::int64_t rank) { return timer(op, rank); });
}

// (name, micro-batch) of a program's ops on `stream`, in program order.
std::vector<std::pair<std::string, int>> stream_order(const RankProgram& program, Stream stream) {
  std::vector<std::pair<std::string, int>> order;
  for (const Op& op : program.ops)
    if (op.stream == stream)
      order.emplace_back(op.name, op.micro_batch);
  return order;
}

std::ptrdiff_t position_of(const std::vector<std::pair<std::string, int>>& order,
                           const std::string& name, int micro_batch) {
  const auto found = std::find(order.begin(), order.end(), std::pair{name, micro_batch});
  EXPECT_NE(found, order.end()) << name << " of micro-batch " << micro_batch;
  return found - order.begin();
}

TEST(EpOverlapLowering, WithoutPipeliningEachForwardRunsBesideThePreviousBackward) {
  const StepProgram program = lower_plan(qwen_ep16(true));
  validate_step_program(program);
  EXPECT_EQ(program.metadata.at("schedule"), "combined_no_pipelining");
  ASSERT_EQ(program.programs.size(), 1u);
  // Forward layer 0 of micro-batch 1 is paired with backward layer 27 of micro-batch 0:
  // combine_bwd | dispatch_fwd → dispatch_bwd | combine_fwd on the EP stream...
  const auto ep = stream_order(program.programs[0], Stream::ep_comm);
  const std::ptrdiff_t combine_bwd = position_of(ep, "layer27.moe.combine.bwd", 0);
  const std::ptrdiff_t dispatch_fwd = position_of(ep, "layer0.moe.dispatch.fwd", 1);
  const std::ptrdiff_t dispatch_bwd = position_of(ep, "layer27.moe.dispatch.bwd", 0);
  const std::ptrdiff_t combine_fwd = position_of(ep, "layer0.moe.combine.fwd", 1);
  EXPECT_LT(combine_bwd, dispatch_fwd);
  EXPECT_LT(dispatch_fwd, dispatch_bwd);
  EXPECT_LT(dispatch_bwd, combine_fwd);
  // ...while the compute stream runs attention_fwd | experts_bwd → experts_fwd | attention_bwd.
  const auto compute = stream_order(program.programs[0], Stream::compute);
  EXPECT_LT(position_of(compute, "layer0.attn.core.fwd", 1),
            position_of(compute, "layer27.moe.fc2.dgrad", 0));
  EXPECT_LT(position_of(compute, "layer27.moe.fc1.dgrad", 0),
            position_of(compute, "layer0.moe.fc1.fwd", 1));
  EXPECT_LT(position_of(compute, "layer0.moe.fc2.fwd", 1),
            position_of(compute, "layer27.attn.core.bwd", 0));
  // F0 runs alone first and B3 alone last.
  EXPECT_EQ(compute.front().second, 0);
  EXPECT_EQ(compute[compute.size() - 2].second, 3); // before the optimizer step
}

TEST(EpOverlapLowering, OverlapHidesEpCommunicationAndShortensTheStep) {
  const Plan sequential_plan = qwen_ep16(false);
  const Plan overlapped_plan = qwen_ep16(true);
  const SimulationResult sequential = simulate(sequential_plan, lower_plan(sequential_plan));
  const SimulationResult overlapped = simulate(overlapped_plan, lower_plan(overlapped_plan));
  ASSERT_GT(sequential.mean_exposed_s[kEpComm], 0.05 * sequential.step_time_s); // EP-heavy
  EXPECT_LT(overlapped.mean_exposed_s[kEpComm], 0.7 * sequential.mean_exposed_s[kEpComm]);
  EXPECT_LT(overlapped.step_time_s, sequential.step_time_s);
  // The EP stream does the same work either way.
  EXPECT_NEAR(overlapped.ranks[0].busy_s[kEpComm], sequential.ranks[0].busy_s[kEpComm],
              1e-9 * sequential.step_time_s);
}

// Mixtral-8x7B on 32 GPUs, TP2 PP2 VPP2 EP8; GBS 32 → 8 micro-batches.
Plan mixtral_interleaved(bool overlap) {
  return make_plan("mixtral-8x7b", 32, {.tp = 2, .pp = 2, .vpp = 2, .ep = 8}, 32, overlap);
}

TEST(EpOverlapLowering, InterleavedPipelineHasOneMoreWarmupForwardAndCombinedSteps) {
  const Plan plan = mixtral_interleaved(true);
  const StepProgram program = lower_plan(plan);
  validate_step_program(program);
  EXPECT_EQ(program.metadata.at("schedule"), "combined_interleaved_1f1b");
  const std::int64_t pp = 2, vpp = 2;
  for (std::int64_t stage = 0; stage < pp; ++stage) {
    SCOPED_TRACE(stage);
    // Forward (micro-batch, layer) passes begun before the first backward op: Megatron's
    // warm-up 2·(PP−r−1) + (VPP−1)·PP, plus one with the overlap. Chunks hold 8 layers.
    std::set<std::pair<int, int>> warmup;
    for (const Op& op : program.programs[static_cast<std::size_t>(stage)].ops) {
      if (op.stream != Stream::compute || op.layer < 0)
        continue;
      if (op.phase != Phase::forward)
        break;
      warmup.insert({op.micro_batch, op.layer / 8});
    }
    EXPECT_EQ(static_cast<std::int64_t>(warmup.size()), 2 * (pp - stage - 1) + (vpp - 1) * pp + 1);
  }
  const SimulationResult overlapped = simulate(plan, program);
  const Plan sequential_plan = mixtral_interleaved(false);
  const SimulationResult sequential = simulate(sequential_plan, lower_plan(sequential_plan));
  EXPECT_LT(overlapped.mean_exposed_s[kEpComm], sequential.mean_exposed_s[kEpComm]);
  EXPECT_LT(overlapped.step_time_s, sequential.step_time_s);
}

TEST(EpOverlapLowering, RoutedExpertsAndOverlapTogetherValidateAndSimulate) {
  const Plan plan = mixtral_interleaved(true);
  const DispatchResult dispatch = simulate_dispatch(
      plan.model, plan.parallel, plan.training, plan.options, parse_routing_spec("zipf:1.2"), 2);
  const StepProgram program = lower_plan(plan, ExpertLoads(dispatch));
  validate_step_program(program);
  EXPECT_GT(program.programs.size(), 2u);
  EXPECT_GT(simulate(plan, program).step_time_s, 0);
}

} // namespace
} // namespace foldplan
