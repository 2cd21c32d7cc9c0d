// Lowering with routed experts: the dispatcher simulation's send/receive matrix becomes each EP
// rank's all_to_all_v splits and expert GEMM rows. Balanced routing lowers exactly as before;
// tokens sent equal tokens received in the program; skew breaks program sharing only between
// places of the ETP×EP group; the event simulation's step grows with the skew because the
// slowest EP rank paces every layer.
#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include <gtest/gtest.h>

#include "core/step_program_json.hpp"
#include "costmodel/cost_context.hpp"
#include "simulator/dispatch_simulation.hpp"
#include "simulator/event_simulation.hpp"
#include "simulator/lowering.hpp"
#include "simulator/op_timer.hpp"
#include "tests/simulator/test_plans.hpp"
#include "topologies/cluster_spec.hpp"

namespace foldplan {
namespace {

using testing_plans::make_plan;

// Mixtral-8x7B on 32 GPUs: TP2 PP2 EP4 ETP1 → EDP 4, DP 8; GBS 32 → 4 micro-batches.
Plan mixtral_32() {
  return make_plan("mixtral-8x7b", 32, {.tp = 2, .pp = 2, .ep = 4}, 32);
}

DispatchResult dispatch_of(const Plan& plan, const std::string& routing) {
  return simulate_dispatch(plan.model, plan.parallel, plan.training, plan.options,
                           parse_routing_spec(routing),
                           static_cast<int>(num_micro_batches(plan.parallel, plan.training)));
}

double simulated_step_s(const Plan& plan, const StepProgram& program) {
  const CostContext context(plan.cluster, plan.gpus);
  const CostModelOpTimer timer(context, program);
  return simulate_step(program, [&](const Op& op, std::int64_t rank) { return timer(op, rank); })
      .step_time_s;
}

const CommGroup& family_named(const StepProgram& program, const std::string& name) {
  const auto found = std::find_if(program.groups.begin(), program.groups.end(),
                                  [&](const CommGroup& family) { return family.name == name; });
  EXPECT_NE(found, program.groups.end()) << name;
  return *found;
}

// The ops named `name` of `rank`'s program, in program order.
std::vector<const Op*> ops_named(const StepProgram& program, std::int64_t rank,
                                 const std::string& name) {
  std::vector<const Op*> found;
  for (const Op& op : program_of_rank(program, rank)->ops)
    if (op.name.size() >= name.size() &&
        op.name.compare(op.name.size() - name.size(), name.size(), name) == 0)
      found.push_back(&op);
  return found;
}

TEST(RoutedLowering, BalancedRoutingLowersExactlyAsBefore) {
  for (Plan plan : {mixtral_32(), make_plan("mixtral-8x7b", 32,
                                            {.tp = 2, .cp = 2, .pp = 2, .ep = 4, .etp = 2}, 32)}) {
    plan.options.capacity_factor = 1.0;
    const DispatchResult dispatch = dispatch_of(plan, "balanced");
    const ExpertLoads loads(dispatch);
    const StepProgram routed = lower_plan(plan, loads);
    EXPECT_EQ(routed, lower_plan(plan));
    EXPECT_EQ(routed.programs.size(), 2u); // one per stage, shared by all its ranks
    EXPECT_DOUBLE_EQ(simulated_step_s(plan, routed), simulated_step_s(plan, lower_plan(plan)));
  }
}

TEST(RoutedLowering, TokensSentEqualTokensReceivedInTheProgram) {
  const Plan plan = mixtral_32();
  const DispatchResult dispatch = dispatch_of(plan, "zipf:1.2");
  const StepProgram program = lower_plan(plan, ExpertLoads(dispatch));
  validate_step_program(program);
  const double row_bytes = static_cast<double>(plan.model.hidden_size) * 2;
  const std::int64_t local_experts = plan.model.moe.num_experts / plan.parallel.ep;
  int checked = 0;
  for (const auto& group : family_named(program, "ep").members) {
    // [position in the group] → that rank's forward dispatches and combines, in program order.
    std::vector<std::vector<const Op*>> dispatches, combines, fc1s;
    for (const std::int64_t rank : group) {
      dispatches.push_back(ops_named(program, rank, "moe.dispatch.fwd"));
      combines.push_back(ops_named(program, rank, "moe.combine.fwd"));
      fc1s.push_back(ops_named(program, rank, "moe.fc1.fwd"));
    }
    for (std::size_t n = 0; n < dispatches.front().size(); ++n) {
      double sent = 0, received = 0;
      for (std::size_t destination = 0; destination < group.size(); ++destination) {
        const auto& combine = std::get<CollectiveShape>(combines[destination][n]->shape);
        ASSERT_EQ(combine.op, CollectiveOp::all_to_all_v);
        double into_destination = 0;
        for (std::size_t source = 0; source < group.size(); ++source) {
          const auto& split = std::get<CollectiveShape>(dispatches[source][n]->shape);
          ASSERT_EQ(split.op, CollectiveOp::all_to_all_v);
          into_destination += split.send_bytes_per_peer[destination];
          // The combine returns to each source exactly what it sent.
          EXPECT_DOUBLE_EQ(combine.send_bytes_per_peer[source],
                           split.send_bytes_per_peer[destination]);
        }
        EXPECT_DOUBLE_EQ(combine.bytes, into_destination);
        // The destination's experts compute every row it received (ETP 1), spread evenly over its
        // local experts and rounded up.
        const auto& fc1 = std::get<GemmShape>(fc1s[destination][n]->shape);
        const double rows = into_destination / row_bytes;
        EXPECT_EQ(fc1.groups, local_experts);
        EXPECT_GE(static_cast<double>(fc1.m * fc1.groups), rows);
        EXPECT_LT(static_cast<double>((fc1.m - 1) * fc1.groups), rows);
        received += into_destination;
        sent += std::get<CollectiveShape>(dispatches[destination][n]->shape).bytes;
      }
      EXPECT_DOUBLE_EQ(sent, received);
      ++checked;
    }
  }
  // 8 EP groups (2 stages × EDP 4) × 16 layers × 4 micro-batches.
  EXPECT_EQ(checked, 8 * 16 * 4);
}

TEST(RoutedLowering, SkewGivesEachEpPlaceItsOwnProgramAndSharesTheRest) {
  const Plan plan = mixtral_32();
  const DispatchResult dispatch = dispatch_of(plan, "zipf:1.2");
  const StepProgram program = lower_plan(plan, ExpertLoads(dispatch));
  EXPECT_EQ(program.metadata.at("routing"), "simulated");
  // PP 2 × EP 4 places; each shared by the 4 EDP replicas of its place.
  ASSERT_EQ(program.programs.size(), 8u);
  std::set<std::int64_t> seen;
  for (const RankProgram& shared : program.programs) {
    EXPECT_EQ(shared.ranks.size(), 4u);
    EXPECT_TRUE(std::is_sorted(shared.ranks.begin(), shared.ranks.end()));
    // MoE rank = ep + EP·(edp + EDP·pp): one EP index and one stage per program.
    std::set<std::int64_t> ep_indices, stages;
    for (const std::int64_t rank : shared.ranks) {
      ep_indices.insert(rank % 4);
      stages.insert(rank / 16);
      seen.insert(rank);
    }
    EXPECT_EQ(ep_indices.size(), 1u);
    EXPECT_EQ(stages.size(), 1u);
  }
  EXPECT_EQ(seen.size(), 32u);
}

TEST(RoutedLowering, ZipfSkewRaisesTheSimulatedStepMonotonically) {
  const Plan plan = mixtral_32();
  const double balanced = simulated_step_s(plan, lower_plan(plan));
  double previous = balanced;
  for (const char* routing : {"zipf:0.5", "zipf:1", "zipf:1.5", "zipf:2"}) {
    SCOPED_TRACE(routing);
    const DispatchResult dispatch = dispatch_of(plan, routing);
    const double step = simulated_step_s(plan, lower_plan(plan, ExpertLoads(dispatch)));
    EXPECT_GT(step, previous);
    previous = step;
  }
  EXPECT_GT(previous, 1.1 * balanced);
}

TEST(RoutedLowering, TheSlowestEpRankPacesItsGroup) {
  const Plan plan = mixtral_32();
  const DispatchResult dispatch = dispatch_of(plan, "zipf:1.5");
  const StepProgram program = lower_plan(plan, ExpertLoads(dispatch));
  const CostContext context(plan.cluster, plan.gpus);
  const CostModelOpTimer timer(context, program);
  const SimulationResult result =
      simulate_step(program, [&](const Op& op, std::int64_t rank) { return timer(op, rank); },
                    {.record_timeline = true});
  // Stage 0's first EP group, ranks 0..3: their expert work differs.
  constexpr std::size_t kCompute = stream_index(Stream::compute);
  std::vector<double> busy;
  for (std::int64_t rank = 0; rank < 4; ++rank)
    busy.push_back(result.ranks[static_cast<std::size_t>(rank)].busy_s[kCompute]);
  EXPECT_GT(*std::max_element(busy.begin(), busy.end()),
            1.02 * *std::min_element(busy.begin(), busy.end()));
  // Yet every forward combine starts on all four when the last of them has finished its experts
  // (the unsort after the grouped GEMMs): the others wait for it.
  auto interval = [&](std::int64_t rank, const Op* op) {
    const RankProgram& own = *program_of_rank(program, rank);
    const auto position = static_cast<std::size_t>(op - own.ops.data());
    return result.ranks[static_cast<std::size_t>(rank)].timeline[position];
  };
  std::vector<std::vector<const Op*>> combines, unsorts;
  for (std::int64_t rank = 0; rank < 4; ++rank) {
    combines.push_back(ops_named(program, rank, "moe.combine.fwd"));
    unsorts.push_back(ops_named(program, rank, "moe.unsort.fwd"));
  }
  double waited_s = 0;
  for (std::size_t n = 0; n < combines.front().size(); ++n) {
    double last_expert_end = 0;
    for (std::int64_t rank = 0; rank < 4; ++rank) {
      const auto r = static_cast<std::size_t>(rank);
      last_expert_end = std::max(last_expert_end, interval(rank, unsorts[r][n]).end_s);
    }
    for (std::int64_t rank = 0; rank < 4; ++rank) {
      const auto r = static_cast<std::size_t>(rank);
      EXPECT_GE(interval(rank, combines[r][n]).start_s, last_expert_end - 1e-12);
      waited_s += last_expert_end - interval(rank, unsorts[r][n]).end_s;
    }
  }
  EXPECT_GT(waited_s, 0);
}

TEST(RoutedLowering, ExpertTensorParallelAndAllgatherDispatcherValidate) {
  Plan plan = make_plan("mixtral-8x7b", 32, {.tp = 2, .cp = 2, .pp = 2, .ep = 4, .etp = 2}, 32);
  {
    const DispatchResult dispatch = dispatch_of(plan, "zipf:1.2");
    const StepProgram program = lower_plan(plan, ExpertLoads(dispatch));
    validate_step_program(program);
    // Places are (ETP index, EP index): 2 stages × 2 × 4.
    EXPECT_EQ(program.programs.size(), 16u);
    EXPECT_GT(simulated_step_s(plan, program), 0);
  }
  plan.options.dispatcher = Dispatcher::allgather;
  const DispatchResult dispatch = dispatch_of(plan, "zipf:1.2");
  const StepProgram program = lower_plan(plan, ExpertLoads(dispatch));
  validate_step_program(program);
  for (const RankProgram& rank_program : program.programs) {
    for (const Op& op : rank_program.ops) {
      if (const auto* collective = std::get_if<CollectiveShape>(&op.shape)) {
        EXPECT_TRUE(collective->send_bytes_per_peer.empty()) << op.name;
      }
    }
  }
  // What moves is routing-independent; the experts' rows are not: one program per EP index.
  EXPECT_EQ(program.programs.size(), 2u * 4u);
}

TEST(RoutedLowering, TheRoutedProgramRoundTripsThroughItsJson) {
  Plan plan = make_plan("mixtral-8x7b", 16, {.tp = 2, .pp = 2, .vpp = 2, .ep = 4}, 32);
  plan.options.overlap_moe_expert_parallel_comm = true;
  const DispatchResult dispatch = dispatch_of(plan, "zipf:1.2");
  const StepProgram program = lower_plan(plan, ExpertLoads(dispatch));
  const StepProgram read_back = step_program_from_json(step_program_to_json(program));
  validate_step_program(read_back);
  EXPECT_EQ(read_back, program);
}

TEST(RoutedLowering, ADispatchOfAnotherPlanIsRefused) {
  const Plan plan = mixtral_32();
  const Plan other = make_plan("mixtral-8x7b", 32, {.tp = 2, .pp = 2, .ep = 8}, 32);
  const DispatchResult dispatch = dispatch_of(other, "zipf:1.2");
  EXPECT_THROW(lower_plan(plan, ExpertLoads(dispatch)), std::invalid_argument);
}

} // namespace
} // namespace foldplan
