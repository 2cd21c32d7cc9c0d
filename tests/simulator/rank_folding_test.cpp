// Folding interchangeable ranks: which programs fold, into what, and that the folded simulation
// gives every rank exactly the figures of the full one on lowered plans (pipeline stages,
// interleaving, CP, ETP, skewed routing).
#include "simulator/rank_folding.hpp"

#include <gtest/gtest.h>

#include "costmodel/cost_context.hpp"
#include "simulator/dispatch_simulation.hpp"
#include "simulator/event_simulation.hpp"
#include "simulator/expert_load.hpp"
#include "simulator/lowering.hpp"
#include "simulator/op_timer.hpp"
#include "simulator/routing.hpp"
#include "tests/simulator/test_plans.hpp"

namespace foldplan {
namespace {

using testing_plans::make_plan;

Op compute(int id, std::string name, std::vector<int> deps = {}) {
  return {.id = id,
          .name = std::move(name),
          .kind = OpKind::memory_bound,
          .deps = std::move(deps),
          .shape = MemoryBoundShape{.bytes = 1}};
}

Op all_reduce(int id, int group_id, std::vector<int> deps = {}) {
  return {.id = id,
          .name = "ar",
          .kind = OpKind::collective,
          .stream = Stream::tp_comm,
          .deps = std::move(deps),
          .shape = CollectiveShape{.op = CollectiveOp::all_reduce,
                                   .group_id = group_id,
                                   .bytes = 8,
                                   .send_bytes_per_peer = {}}};
}

Op transfer(int id, OpKind kind, std::int64_t peer, std::vector<int> deps = {}) {
  return {.id = id,
          .name = kind == OpKind::send ? "send" : "recv",
          .kind = kind,
          .stream = Stream::pp_comm,
          .deps = std::move(deps),
          .shape = PeerTransfer{.group_id = 2, .peer_index = peer, .bytes = 8, .tag = 0}};
}

// Two stages of two ranks: TP groups {0,1} {2,3}, PP groups {0,2} {1,3}; stage 0 computes,
// all-reduces and sends; stage 1 receives, computes and all-reduces.
StepProgram two_stage_program() {
  StepProgram program;
  program.world_size = 4;
  program.groups = {{.id = 1, .name = "tp", .members = {{0, 1}, {2, 3}}},
                    {.id = 2, .name = "pp", .members = {{0, 2}, {1, 3}}}};
  program.programs = {
      {.ranks = {0, 1},
       .ops = {compute(0, "fwd"), all_reduce(1, 1, {0}), transfer(2, OpKind::send, 1, {1})}},
      {.ranks = {2, 3},
       .ops = {transfer(0, OpKind::recv, 0), compute(1, "fwd", {0}), all_reduce(2, 1, {1})}}};
  return program;
}

TEST(RankFolding, TwoStagesFoldIntoOneRankEach) {
  const std::optional<FoldedProgram> folded = fold_interchangeable_ranks(two_stage_program());
  ASSERT_TRUE(folded);
  EXPECT_EQ(folded->program.world_size, 2);
  EXPECT_EQ(folded->representative, (std::vector<std::int64_t>{0, 2}));
  EXPECT_EQ(folded->class_of_rank, (std::vector<std::int32_t>{0, 0, 1, 1}));
  ASSERT_EQ(folded->program.groups.size(), 2u);
  // Each TP group holds one class twice: one member per class will do for a collective.
  EXPECT_EQ(folded->program.groups[0].members, (std::vector<std::vector<std::int64_t>>{{0}, {1}}));
  // Both PP groups are (stage 0, stage 1): one group, positions kept for the transfers.
  EXPECT_EQ(folded->program.groups[1].members, (std::vector<std::vector<std::int64_t>>{{0, 1}}));
  EXPECT_NO_THROW(validate_step_program(folded->program));
}

TEST(RankFolding, FoldedSimulationGivesEveryRankTheFullFigures) {
  const StepProgram program = two_stage_program();
  const OpTimer timer = [](const Op& op, std::int64_t) {
    return op.kind == OpKind::collective ? 2.0 : op.kind == OpKind::memory_bound ? 3.0 : 1.0;
  };
  const SimulationResult full = simulate_step(program, timer, {.record_timeline = true});
  const SimulationResult folded =
      simulate_step(program, timer, {.record_timeline = true, .fold_interchangeable_ranks = true});
  EXPECT_EQ(folded, full);
  EXPECT_DOUBLE_EQ(full.step_time_s, 3 + 2 + 1 + 3 + 2); // fwd, ar, send, fwd, ar
}

TEST(RankFolding, AClassInGroupsOfDifferentMakeUpDoesNotFold) {
  StepProgram program = two_stage_program();
  // Rank 3 runs a third program: rank 1's PP group is (class 0, class 2), rank 0's (0, 1).
  program.programs[1].ranks = {2};
  program.programs.push_back({.ranks = {3}, .ops = program.programs[1].ops});
  EXPECT_FALSE(fold_interchangeable_ranks(program));
}

TEST(RankFolding, AClassTwiceInAGroupWithTransfersDoesNotFold) {
  // One pipeline of four ranks whose middle two share a program: positions 1 and 2 hold one class.
  StepProgram program;
  program.world_size = 4;
  program.groups = {{.id = 2, .name = "pp", .members = {{0, 1, 2, 3}}}};
  program.programs = {
      {.ranks = {0}, .ops = {transfer(0, OpKind::send, 1), transfer(1, OpKind::send, 2)}},
      {.ranks = {1, 2}, .ops = {transfer(0, OpKind::recv, 0), transfer(1, OpKind::send, 3, {0})}},
      {.ranks = {3}, .ops = {transfer(0, OpKind::recv, 1), transfer(1, OpKind::recv, 2)}}};
  ASSERT_NO_THROW(validate_step_program(program));
  EXPECT_FALSE(fold_interchangeable_ranks(program));
}

// Full and folded simulation of a lowered plan, rank by rank; and the fold really happened.
void expect_folding_is_exact(const Plan& plan, const StepProgram& program) {
  const CostContext context(plan.cluster, plan.gpus);
  const CostModelOpTimer timer(context, program);
  ASSERT_TRUE(timer.ranks_interchangeable());
  const std::optional<FoldedProgram> folded = fold_interchangeable_ranks(program);
  ASSERT_TRUE(folded);
  EXPECT_EQ(folded->program.world_size, static_cast<std::int64_t>(program.programs.size()));
  EXPECT_LT(folded->program.world_size, program.world_size);
  const OpTimer clock = [&](const Op& op, std::int64_t rank) { return timer(op, rank); };
  const SimulationResult full = simulate_step(program, clock, {.record_timeline = true});
  const SimulationResult fast =
      simulate_step(program, clock, {.record_timeline = true, .fold_interchangeable_ranks = true});
  EXPECT_GT(full.step_time_s, 0);
  EXPECT_EQ(fast, full); // bit for bit: the same events at the same times
}

TEST(RankFolding, ExactOnPipelinedMoePlans) {
  expect_folding_is_exact(
      make_plan("mixtral-8x7b", 32, {.tp = 2, .pp = 2, .ep = 4}, 32),
      lower_plan(make_plan("mixtral-8x7b", 32, {.tp = 2, .pp = 2, .ep = 4}, 32)));
  const Plan interleaved = make_plan("mixtral-8x7b", 32, {.tp = 2, .pp = 4, .vpp = 2, .ep = 4}, 64);
  expect_folding_is_exact(interleaved, lower_plan(interleaved));
  const Plan context_parallel =
      make_plan("mixtral-8x7b", 32, {.tp = 2, .cp = 2, .pp = 2, .ep = 4, .etp = 2}, 32);
  expect_folding_is_exact(context_parallel, lower_plan(context_parallel));
}

TEST(RankFolding, ExactUnderSkewedRouting) {
  const Plan plan = make_plan("mixtral-8x7b", 32, {.tp = 2, .pp = 2, .ep = 4}, 32);
  const DispatchResult dispatch = simulate_dispatch(
      plan.model, plan.parallel, plan.training, plan.options, parse_routing_spec("zipf:1.2"),
      static_cast<int>(num_micro_batches(plan.parallel, plan.training)));
  expect_folding_is_exact(plan, lower_plan(plan, ExpertLoads(dispatch)));
}

} // namespace
} // namespace foldplan
