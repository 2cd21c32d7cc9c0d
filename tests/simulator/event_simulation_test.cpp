// The discrete-event step simulation: hand-computed collectives, send/recv pairing, stream overlap,
// exposed communication, deadlocks, determinism and the 1F1B and interleaved 1F1B pipeline bubble
// formulas.
#include "simulator/event_simulation.hpp"

#include <algorithm>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "models/model_spec.hpp"
#include "parallel/parallel_config.hpp"
#include "simulator/lowering.hpp"
#include "tests/simulator/test_plans.hpp"
#include "topologies/cluster_spec.hpp"

namespace foldplan {
namespace {

constexpr std::size_t kCompute = stream_index(Stream::compute);
constexpr std::size_t kDpComm = stream_index(Stream::dp_comm);
constexpr std::size_t kPpComm = stream_index(Stream::pp_comm);

Op compute(std::string name, std::vector<int> deps = {}, Phase phase = Phase::forward) {
  return Op{.name = std::move(name),
            .kind = OpKind::gemm,
            .stream = Stream::compute,
            .phase = phase,
            .deps = std::move(deps),
            .shape = GemmShape{.m = 1, .n = 1, .k = 1}};
}

Op all_reduce(std::string name, int group_id, std::vector<int> deps = {}) {
  return Op{.name = std::move(name),
            .kind = OpKind::collective,
            .stream = Stream::dp_comm,
            .deps = std::move(deps),
            .shape = CollectiveShape{.op = CollectiveOp::all_reduce,
                                     .group_id = group_id,
                                     .bytes = 1024,
                                     .send_bytes_per_peer = {}}};
}

Op transfer(OpKind kind, std::string name, int group_id, std::int64_t peer, int tag,
            std::vector<int> deps = {}) {
  return Op{.name = std::move(name),
            .kind = kind,
            .stream = Stream::pp_comm,
            .deps = std::move(deps),
            .shape =
                PeerTransfer{.group_id = group_id, .peer_index = peer, .bytes = 64, .tag = tag}};
}

// Durations by op name; every op of the test must be listed.
OpTimer timer_by_name(std::map<std::string, double> seconds) {
  return [seconds = std::move(seconds)](const Op& op, std::int64_t) { return seconds.at(op.name); };
}

StepProgram world_of(std::int64_t world_size, std::vector<CommGroup> groups) {
  StepProgram program;
  program.world_size = world_size;
  program.groups = std::move(groups);
  return program;
}

// Two ranks share one program: fwd, all-reduce over both, bwd. Rank 1's fwd is slower.
StepProgram shared_all_reduce_program() {
  StepProgram program = world_of(2, {CommGroup{.id = 3, .name = "dp", .members = {{0, 1}}}});
  RankProgram both{.ranks = {0, 1}, .ops = {}};
  const int fwd = append_op(both, compute("fwd"));
  const int reduce = append_op(both, all_reduce("ar", 3, {fwd}));
  append_op(both, compute("bwd", {reduce}, Phase::backward_dgrad));
  program.programs.push_back(both);
  return program;
}

OpTimer shared_all_reduce_timer() {
  return [](const Op& op, std::int64_t rank) {
    if (op.name == "fwd")
      return rank == 0 ? 1.0 : 3.0;
    return op.name == "ar" ? 2.0 : 1.0;
  };
}

TEST(EventSimulation, CollectiveStartsAtTheLaterArrival) {
  const SimulationResult result = simulate_step(
      shared_all_reduce_program(), shared_all_reduce_timer(), {.record_timeline = true});
  // fwd: rank 0 [0,1], rank 1 [0,3]; all-reduce [3,5] on both; bwd [5,6].
  EXPECT_DOUBLE_EQ(result.step_time_s, 6.0);
  ASSERT_EQ(result.ranks.size(), 2u);
  const std::vector<OpInterval> rank0 = {{0, 1}, {3, 5}, {5, 6}};
  const std::vector<OpInterval> rank1 = {{0, 3}, {3, 5}, {5, 6}};
  EXPECT_EQ(result.ranks[0].timeline, rank0);
  EXPECT_EQ(result.ranks[1].timeline, rank1);
  EXPECT_DOUBLE_EQ(result.ranks[0].busy_s[kCompute], 2.0);
  EXPECT_DOUBLE_EQ(result.ranks[0].busy_s[kDpComm], 2.0); // waiting for rank 1 is not busy
  EXPECT_DOUBLE_EQ(result.ranks[0].compute_idle_s, 4.0);
  EXPECT_DOUBLE_EQ(result.ranks[0].bubble_fraction, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(result.ranks[1].compute_idle_s, 2.0);
  EXPECT_DOUBLE_EQ(result.ranks[0].exposed_s[kDpComm], 2.0);
  EXPECT_DOUBLE_EQ(result.mean_exposed_s[kDpComm], 2.0);
  EXPECT_DOUBLE_EQ(result.mean_bubble_fraction, (4.0 / 6.0 + 2.0 / 6.0) / 2);
  EXPECT_EQ(result.critical_rank, 0); // both finish at 6: the lowest rank
  EXPECT_TRUE(simulate_step(shared_all_reduce_program(), shared_all_reduce_timer())
                  .ranks[0]
                  .timeline.empty());
}

TEST(EventSimulation, CollectiveLastsTheLongestMemberDuration) {
  const OpTimer timer = [](const Op& op, std::int64_t rank) {
    if (op.name == "ar")
      return rank == 1 ? 4.0 : 2.0;
    return 1.0;
  };
  const SimulationResult result =
      simulate_step(shared_all_reduce_program(), timer, {.record_timeline = true});
  EXPECT_EQ(result.ranks[0].timeline[1], (OpInterval{1, 5}));
  EXPECT_DOUBLE_EQ(result.step_time_s, 6.0);
}

TEST(EventSimulation, SendAndRecvPairUpAndCompleteTogether) {
  StepProgram program = world_of(2, {CommGroup{.id = 1, .name = "pp", .members = {{0, 1}}}});
  RankProgram sender{.ranks = {0}, .ops = {}};
  const int produce = append_op(sender, compute("produce"));
  append_op(sender, transfer(OpKind::send, "send", 1, 1, 7, {produce}));
  RankProgram receiver{.ranks = {1}, .ops = {}};
  // A recv of another tag that nobody sends would deadlock: here the tags match.
  const int receive = append_op(receiver, transfer(OpKind::recv, "recv", 1, 0, 7));
  append_op(receiver, compute("consume", {receive}));
  program.programs = {sender, receiver};
  const OpTimer timer = [](const Op& op, std::int64_t) {
    if (op.name == "produce")
      return 2.0;
    if (op.name == "send")
      return 0.5;
    if (op.name == "recv")
      return 1.0; // the pair lasts the longer side
    return 1.0;
  };
  const SimulationResult result = simulate_step(program, timer, {.record_timeline = true});
  EXPECT_EQ(result.ranks[0].timeline, (std::vector<OpInterval>{{0, 2}, {2, 3}}));
  EXPECT_EQ(result.ranks[1].timeline, (std::vector<OpInterval>{{2, 3}, {3, 4}}));
  EXPECT_DOUBLE_EQ(result.step_time_s, 4.0);
  EXPECT_DOUBLE_EQ(result.ranks[1].busy_s[kPpComm], 1.0);
  EXPECT_EQ(result.critical_rank, 1);
}

TEST(EventSimulation, RepeatedTagsPairInProgramOrder) {
  StepProgram program = world_of(2, {CommGroup{.id = 1, .name = "pp", .members = {{0, 1}}}});
  RankProgram sender{.ranks = {0}, .ops = {}};
  const int first = append_op(sender, compute("a"));
  append_op(sender, transfer(OpKind::send, "send1", 1, 1, 0, {first}));
  const int second = append_op(sender, compute("b", {first}));
  append_op(sender, transfer(OpKind::send, "send2", 1, 1, 0, {second}));
  RankProgram receiver{.ranks = {1}, .ops = {}};
  append_op(receiver, transfer(OpKind::recv, "recv1", 1, 0, 0));
  append_op(receiver, transfer(OpKind::recv, "recv2", 1, 0, 0));
  program.programs = {sender, receiver};
  const SimulationResult result = simulate_step(
      program,
      timer_by_name({{"a", 1}, {"b", 1}, {"send1", 0}, {"send2", 0}, {"recv1", 0}, {"recv2", 0}}),
      {.record_timeline = true});
  EXPECT_EQ(result.ranks[1].timeline, (std::vector<OpInterval>{{1, 1}, {2, 2}}));
}

// One rank: A, then an all-reduce of A's result on dp_comm, B on compute, C after the all-reduce.
StepProgram overlap_program(bool b_waits_for_reduce) {
  StepProgram program = world_of(1, {CommGroup{.id = 0, .name = "dp", .members = {{0}}}});
  RankProgram only{.ranks = {0}, .ops = {}};
  const int a = append_op(only, compute("A"));
  const int reduce = append_op(only, all_reduce("ar", 0, {a}));
  append_op(only,
            compute("B", b_waits_for_reduce ? std::vector<int>{reduce} : std::vector<int>{a}));
  append_op(only, compute("C", {reduce}));
  program.programs.push_back(only);
  return program;
}

const OpTimer& overlap_timer() {
  static const OpTimer timer = timer_by_name({{"A", 2}, {"ar", 3}, {"B", 2}, {"C", 1}});
  return timer;
}

TEST(EventSimulation, CommunicationOverlapsComputeWhereDepsAllow) {
  const SimulationResult result =
      simulate_step(overlap_program(false), overlap_timer(), {.record_timeline = true});
  // A [0,2]; all-reduce [2,5] beside B [2,4]; C [5,6] after the all-reduce.
  EXPECT_EQ(result.ranks[0].timeline, (std::vector<OpInterval>{{0, 2}, {2, 5}, {2, 4}, {5, 6}}));
  EXPECT_DOUBLE_EQ(result.step_time_s, 6.0);
  EXPECT_DOUBLE_EQ(result.ranks[0].busy_s[kCompute], 5.0);
  EXPECT_DOUBLE_EQ(result.ranks[0].compute_idle_s, 1.0);
  // Exposed: the all-reduce's [2,5] minus B's [2,4].
  EXPECT_DOUBLE_EQ(result.ranks[0].exposed_s[kDpComm], 1.0);
  EXPECT_DOUBLE_EQ(result.critical_exposed_s[kDpComm], 1.0);
  EXPECT_DOUBLE_EQ(result.ranks[0].exposed_s[kCompute], 0.0);
}

TEST(EventSimulation, ADependencySerialisesComputeAfterCommunication) {
  const SimulationResult result =
      simulate_step(overlap_program(true), overlap_timer(), {.record_timeline = true});
  // A [0,2]; all-reduce [2,5]; B [5,7]; C [7,8].
  EXPECT_EQ(result.ranks[0].timeline, (std::vector<OpInterval>{{0, 2}, {2, 5}, {5, 7}, {7, 8}}));
  EXPECT_DOUBLE_EQ(result.step_time_s, 8.0);
  EXPECT_DOUBLE_EQ(result.ranks[0].exposed_s[kDpComm], 3.0);
  EXPECT_DOUBLE_EQ(result.ranks[0].compute_idle_s, 3.0);
}

TEST(EventSimulation, ExposedTimeCountsEachCommStreamSeparately) {
  // Compute [0,4]; a tp_comm op [0,6] and a dp_comm op [0,5] beside it, on two more streams.
  StepProgram program = world_of(1, {CommGroup{.id = 0, .name = "x", .members = {{0}}}});
  RankProgram only{.ranks = {0}, .ops = {}};
  append_op(only, compute("work"));
  Op tp = all_reduce("tp", 0);
  tp.stream = Stream::tp_comm;
  append_op(only, tp);
  append_op(only, all_reduce("dp", 0));
  program.programs.push_back(only);
  const SimulationResult result =
      simulate_step(program, timer_by_name({{"work", 4}, {"tp", 6}, {"dp", 5}}));
  EXPECT_DOUBLE_EQ(result.step_time_s, 6.0);
  EXPECT_DOUBLE_EQ(result.ranks[0].exposed_s[stream_index(Stream::tp_comm)], 2.0);
  EXPECT_DOUBLE_EQ(result.ranks[0].exposed_s[kDpComm], 1.0);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(EventSimulation, ACollectiveAMemberNeverIssuesIsADeadlock) {
  StepProgram program = world_of(2, {CommGroup{.id = 3, .name = "dp", .members = {{0, 1}}}});
  RankProgram reducer{.ranks = {0}, .ops = {}};
  const int fwd = append_op(reducer, compute("fwd"));
  append_op(reducer, all_reduce("grad.ar", 3, {fwd}));
  RankProgram forgetful{.ranks = {1}, .ops = {}};
  append_op(forgetful, compute("fwd"));
  program.programs = {reducer, forgetful};
  try {
    simulate_step(program, timer_by_name({{"fwd", 1}, {"grad.ar", 1}}));
    FAIL() << "expected a deadlock";
  } catch (const InputError& error) {
    EXPECT_EQ(error.field(), "program.programs[0].ops[1]");
    EXPECT_TRUE(contains(error.rule(), "rank 0 waits at op 1 \"grad.ar\"")) << error.rule();
    EXPECT_TRUE(contains(error.rule(), "for rank 1, which issues only 0 collectives"))
        << error.rule();
  }
}

TEST(EventSimulation, AnUnmatchedSendIsADeadlock) {
  StepProgram program = world_of(2, {CommGroup{.id = 1, .name = "pp", .members = {{0, 1}}}});
  RankProgram sender{.ranks = {0}, .ops = {}};
  append_op(sender, transfer(OpKind::send, "send", 1, 1, 5));
  RankProgram receiver{.ranks = {1}, .ops = {}};
  append_op(receiver, transfer(OpKind::recv, "recv", 1, 0, 6));
  program.programs = {sender, receiver};
  try {
    simulate_step(program, timer_by_name({{"send", 0}, {"recv", 0}}));
    FAIL() << "expected a deadlock";
  } catch (const InputError& error) {
    EXPECT_TRUE(contains(error.rule(), "rank 0 waits at op 0 \"send\" (send to rank 1, tag 5)"))
        << error.rule();
    EXPECT_TRUE(contains(error.rule(), "rank 1, which has no matching recv with tag 5"))
        << error.rule();
  }
}

TEST(EventSimulation, MismatchedCollectivesAreAnError) {
  StepProgram program = world_of(2, {CommGroup{.id = 3, .name = "dp", .members = {{0, 1}}}});
  RankProgram first{.ranks = {0}, .ops = {}};
  append_op(first, all_reduce("c", 3));
  RankProgram second{.ranks = {1}, .ops = {}};
  Op gather = all_reduce("c", 3);
  std::get<CollectiveShape>(gather.shape).op = CollectiveOp::all_gather;
  append_op(second, gather);
  program.programs = {first, second};
  EXPECT_THROW(simulate_step(program, timer_by_name({{"c", 1}})), InputError);
}

TEST(EventSimulation, ANegativeDurationIsRejected) {
  EXPECT_THROW(
      simulate_step(shared_all_reduce_program(), [](const Op&, std::int64_t) { return -1.0; }),
      std::invalid_argument);
}

// PP stages, one rank each, in Megatron's 1F1B order (schedules.py
// forward_backward_pipelining_without_interleaving): stage r runs min(PP-r-1, M) warm-up forwards,
// then alternates forward and backward, then the cool-down backwards. Transfers between two stages
// that Megatron batches (send_forward_recv_backward / send_backward_recv_forward) are listed
// forward-direction first on both sides, so the in-order pp_comm streams pair them consistently.
StepProgram one_f_one_b(int pp, int micro_batches) {
  constexpr int kPp = 0;
  constexpr int kBackwardTag = 100000;
  std::vector<std::int64_t> stages;
  for (int r = 0; r < pp; ++r)
    stages.push_back(r);
  StepProgram program = world_of(pp, {CommGroup{.id = kPp, .name = "pp", .members = {stages}}});
  for (int r = 0; r < pp; ++r) {
    RankProgram stage{.ranks = {r}, .ops = {}};
    const bool first = r == 0, last = r == pp - 1;
    auto op = [&](Op made, int micro_batch) {
      made.micro_batch = micro_batch;
      return append_op(stage, std::move(made));
    };
    auto deps_of = [](int dep) { return dep < 0 ? std::vector<int>{} : std::vector<int>{dep}; };
    auto recv_forward = [&](int i) {
      return first ? -1 : op(transfer(OpKind::recv, "recv_fwd", kPp, r - 1, i), i);
    };
    auto send_forward = [&](int i, int dep) {
      if (!last)
        op(transfer(OpKind::send, "send_fwd", kPp, r + 1, i, {dep}), i);
    };
    auto recv_backward = [&](int i) {
      return last ? -1 : op(transfer(OpKind::recv, "recv_bwd", kPp, r + 1, kBackwardTag + i), i);
    };
    auto send_backward = [&](int i, int dep) {
      if (!first)
        op(transfer(OpKind::send, "send_bwd", kPp, r - 1, kBackwardTag + i, {dep}), i);
    };
    auto forward = [&](int i, int dep) { return op(compute("fwd", deps_of(dep)), i); };
    auto backward = [&](int i, int dep) {
      return op(compute("bwd", deps_of(dep), Phase::backward_dgrad), i);
    };

    const int warmup = std::min(pp - r - 1, micro_batches);
    const int remaining = micro_batches - warmup;
    for (int i = 0; i < warmup; ++i)
      send_forward(i, forward(i, recv_forward(i)));
    int input = remaining > 0 ? recv_forward(warmup) : -1;
    for (int j = 0; j < remaining; ++j) {
      const int fwd = forward(warmup + j, input);
      send_forward(warmup + j, fwd);
      const int bwd = backward(j, recv_backward(j));
      const bool last_iteration = j == remaining - 1;
      input = last_iteration ? -1 : recv_forward(warmup + j + 1);
      send_backward(j, bwd);
    }
    for (int i = remaining; i < micro_batches; ++i)
      send_backward(i, backward(i, recv_backward(i)));
    program.programs.push_back(stage);
  }
  return program;
}

OpTimer pipeline_timer(double forward_s) {
  return [forward_s](const Op& op, std::int64_t) {
    if (op.kind == OpKind::send || op.kind == OpKind::recv)
      return 0.0;
    return op.phase == Phase::forward ? forward_s : 2 * forward_s;
  };
}

TEST(EventSimulation, OneFOneBPipelineMatchesTheBubbleFormula) {
  constexpr int kPp = 4;
  constexpr double kForward = 1.0, kBackward = 2.0;
  for (const int micro_batches : {4, 8, 13}) {
    SCOPED_TRACE(micro_batches);
    const SimulationResult result =
        simulate_step(one_f_one_b(kPp, micro_batches), pipeline_timer(kForward));
    // Megatron/GPipe: step = (M + PP - 1)(f + b), bubble = (PP - 1)/(M + PP - 1).
    EXPECT_DOUBLE_EQ(result.step_time_s, (micro_batches + kPp - 1) * (kForward + kBackward));
    const double bubble = static_cast<double>(kPp - 1) / (micro_batches + kPp - 1);
    for (const RankSimulation& rank : result.ranks) {
      EXPECT_DOUBLE_EQ(rank.bubble_fraction, bubble) << "rank " << rank.rank;
      EXPECT_DOUBLE_EQ(rank.busy_s[kCompute], micro_batches * (kForward + kBackward));
    }
    EXPECT_DOUBLE_EQ(result.mean_bubble_fraction, bubble);
    EXPECT_DOUBLE_EQ(result.ranks[0].finish_s, result.step_time_s);
  }
}

// Megatron's interleaved 1F1B as lower_plan emits it (Mixtral-8x7B, TP2 EP4, 32 layers), timed so
// that every chunk's forward lasts f_c and its backward b_c = 2·f_c, with every collective, p2p
// transfer, embedding, output layer and optimizer op instant. Per stage f = VPP·f_c. With VPP
// chunks the pipeline fills and drains in (PP−1) chunk-steps of f_c + b_c instead of PP−1 stage
// steps: step = (M·VPP + PP − 1)·(f_c + b_c) = (M·VPP + PP − 1)·(f + b)/VPP, every stage busy
// M·VPP·(f_c + b_c), bubble = (PP − 1)/(M·VPP + PP − 1) (Narayanan et al., SC'21: (PP−1)/(VPP·M)
// of the ideal time).
TEST(EventSimulation, InterleavedPipelineMatchesTheBubbleFormula) {
  struct Case {
    std::int64_t gpus, pp, vpp, micro_batches;
  };
  for (const Case c : {Case{16, 2, 2, 2}, Case{16, 2, 2, 4}, Case{16, 2, 2, 8}, Case{32, 4, 2, 8},
                       Case{32, 4, 2, 16}, Case{32, 4, 4, 8}}) {
    SCOPED_TRACE("PP" + std::to_string(c.pp) + " VPP" + std::to_string(c.vpp) + " M" +
                 std::to_string(c.micro_batches));
    const std::int64_t dp = c.gpus / (2 * c.pp);
    const Plan plan = testing_plans::make_plan(
        "mixtral-8x7b", c.gpus, {.tp = 2, .pp = c.pp, .vpp = c.vpp, .ep = 4}, dp * c.micro_batches);
    const StepProgram program = lower_plan(plan);

    // Compute-stream ops of one layer pass (every Mixtral layer is alike).
    double forward_ops = 0, backward_ops = 0;
    for (const Op& op : program.programs[0].ops) {
      ASSERT_NE(op.phase, Phase::recompute);
      if (op.layer != 0 || op.micro_batch != 0 || op.stream != Stream::compute)
        continue;
      (op.phase == Phase::forward ? forward_ops : backward_ops) += 1;
    }
    ASSERT_GT(forward_ops, 0);
    ASSERT_GT(backward_ops, 0);
    // Forward ops last backward_ops each, backward ops 2·forward_ops: integers, exact sums.
    const OpTimer timer = [=](const Op& op, std::int64_t) {
      if (op.stream != Stream::compute || op.layer < 0)
        return 0.0;
      return op.phase == Phase::forward ? backward_ops : 2 * forward_ops;
    };
    const double layers_per_chunk = 32.0 / static_cast<double>(c.pp * c.vpp);
    const double chunk_forward = layers_per_chunk * forward_ops * backward_ops;
    const double chunk_backward = 2 * chunk_forward;
    const double chunks = static_cast<double>(c.micro_batches * c.vpp);
    const double steps = chunks + static_cast<double>(c.pp - 1);

    const SimulationResult result = simulate_step(program, timer);
    EXPECT_DOUBLE_EQ(result.step_time_s, steps * (chunk_forward + chunk_backward));
    const double stage_forward = static_cast<double>(c.vpp) * chunk_forward;
    EXPECT_DOUBLE_EQ(result.step_time_s,
                     steps * (stage_forward + 2 * stage_forward) / static_cast<double>(c.vpp));
    const double bubble = static_cast<double>(c.pp - 1) / steps;
    for (const RankSimulation& rank : result.ranks) {
      EXPECT_DOUBLE_EQ(rank.busy_s[kCompute], chunks * (chunk_forward + chunk_backward))
          << "rank " << rank.rank;
      EXPECT_DOUBLE_EQ(rank.bubble_fraction, bubble) << "rank " << rank.rank;
    }
    EXPECT_DOUBLE_EQ(result.mean_bubble_fraction, bubble);
  }
}

TEST(EventSimulation, IsDeterministic) {
  const StepProgram program = one_f_one_b(4, 8);
  const SimulationResult first =
      simulate_step(program, pipeline_timer(0.1), {.record_timeline = true});
  const SimulationResult second =
      simulate_step(program, pipeline_timer(0.1), {.record_timeline = true});
  EXPECT_EQ(first, second);
}

TEST(EventSimulation, SimulatesManyRanksSharingOneProgram) {
  // 256 ranks in 32 TP groups of 8 and 8 DP groups of 32: 500 layers of compute + TP all-reduce,
  // then a DP all-reduce. Every TP all-reduce waits for the slowest rank of its group.
  constexpr int kRanks = 256, kTp = 8, kLayers = 500;
  CommGroup tp{.id = 0, .name = "tp", .members = {}};
  CommGroup dp{.id = 1, .name = "dp", .members = {}};
  for (int g = 0; g < kRanks / kTp; ++g) {
    tp.members.emplace_back();
    for (int t = 0; t < kTp; ++t)
      tp.members.back().push_back(g * kTp + t);
  }
  for (int t = 0; t < kTp; ++t) {
    dp.members.emplace_back();
    for (int g = 0; g < kRanks / kTp; ++g)
      dp.members.back().push_back(g * kTp + t);
  }
  StepProgram program = world_of(kRanks, {tp, dp});
  RankProgram all;
  for (int r = 0; r < kRanks; ++r)
    all.ranks.push_back(r);
  int previous = -1;
  for (int layer = 0; layer < kLayers; ++layer) {
    const int work = append_op(
        all, compute("work", previous < 0 ? std::vector<int>{} : std::vector<int>{previous}));
    Op reduce = all_reduce("tp", 0, {work});
    reduce.stream = Stream::tp_comm;
    previous = append_op(all, reduce);
  }
  append_op(all, all_reduce("dp", 1, {previous}));
  program.programs.push_back(all);
  // Rank 5 is slow (2 s per layer); everyone else 1 s; all-reduces 0.5 s.
  const OpTimer timer = [](const Op& op, std::int64_t rank) {
    if (op.kind == OpKind::collective)
      return 0.5;
    return rank == 5 ? 2.0 : 1.0;
  };
  const SimulationResult result = simulate_step(program, timer);
  // Per layer: TP group 0 runs at 2.5 s, others at 1.5 s; the DP all-reduce then waits for
  // group 0's member of each DP group.
  EXPECT_DOUBLE_EQ(result.step_time_s, kLayers * 2.5 + 0.5);
  EXPECT_DOUBLE_EQ(result.ranks[200].busy_s[kCompute], kLayers * 1.0);
}

} // namespace
} // namespace foldplan
