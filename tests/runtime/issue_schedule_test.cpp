// Issue order and dependency bookkeeping on a hand-built two-rank program: which dependencies
// become event waits (only those on another stream), what each rank receives in an all-to-all-v
// (its peers' splits towards it), and the buffers sized from the largest op.
#include "runtime/issue_schedule.hpp"

#include <gtest/gtest.h>

#include "core/errors.hpp"

namespace foldplan::runtime {
namespace {

RankProgram rank_program(std::int64_t rank, std::vector<double> split) {
  double bytes = 0;
  for (const double part : split)
    bytes += part;
  RankProgram program{.ranks = {rank}, .ops = {}};
  const int fc1 = append_op(program, {.name = "layer0.moe.fc1.fwd",
                                      .kind = OpKind::gemm,
                                      .shape = GemmShape{.m = 4, .n = 8, .k = 16, .groups = 2}});
  const int dispatch =
      append_op(program, {.name = "layer0.moe.dispatch.fwd",
                          .kind = OpKind::collective,
                          .stream = Stream::ep_comm,
                          .deps = {fc1},
                          .shape = CollectiveShape{.op = CollectiveOp::all_to_all_v,
                                                   .group_id = 0,
                                                   .bytes = bytes,
                                                   .send_bytes_per_peer = split}});
  const int fc2 = append_op(program, {.name = "layer0.moe.fc2.fwd",
                                      .kind = OpKind::gemm,
                                      .deps = {dispatch},
                                      .shape = GemmShape{.m = 4, .n = 4, .k = 4}});
  append_op(program, {.name = "layer0.moe.unpermute.fwd",
                      .kind = OpKind::memory_bound,
                      .deps = {fc1, fc2},
                      .shape = MemoryBoundShape{.bytes = 1000, .kernels = 2}});
  return program;
}

StepProgram two_rank_program() {
  StepProgram program;
  program.world_size = 2;
  program.groups = {{.id = 0, .name = "ep", .members = {{0, 1}}}};
  program.programs = {rank_program(0, {100, 300}), rank_program(1, {200, 50})};
  validate_step_program(program);
  return program;
}

TEST(IssueSchedule, OnlyDependenciesOnAnotherStreamBecomeEventWaits) {
  const IssueSchedule schedule = make_issue_schedule(two_rank_program(), 0);
  ASSERT_EQ(schedule.ops.size(), 4u);
  for (std::size_t index = 0; index < 4; ++index)
    EXPECT_EQ(schedule.ops[index].index, index); // list order is issue order
  EXPECT_TRUE(schedule.ops[0].cross_waits.empty());
  EXPECT_EQ(schedule.ops[1].cross_waits, std::vector<std::size_t>{0}); // compute → ep_comm
  EXPECT_EQ(schedule.ops[2].cross_waits, std::vector<std::size_t>{1}); // ep_comm → compute
  EXPECT_TRUE(schedule.ops[3].cross_waits.empty()); // both deps on its own stream
  EXPECT_TRUE(schedule.streams_used[stream_slot(Stream::compute)]);
  EXPECT_TRUE(schedule.streams_used[stream_slot(Stream::ep_comm)]);
  EXPECT_FALSE(schedule.streams_used[stream_slot(Stream::tp_comm)]);
  EXPECT_EQ(schedule.group_ids, std::vector<int>{0});
}

TEST(IssueSchedule, AllToAllVReceivesWhatEachPeerSendsToThisRank) {
  const StepProgram program = two_rank_program();
  // Rank 0 keeps its own 100 and gets rank 1's 200; rank 1 gets rank 0's 300 and keeps 50.
  EXPECT_EQ(make_issue_schedule(program, 0).ops[1].recv_bytes_per_peer,
            (std::vector<double>{100, 200}));
  EXPECT_EQ(make_issue_schedule(program, 1).ops[1].recv_bytes_per_peer,
            (std::vector<double>{300, 50}));
  EXPECT_TRUE(make_issue_schedule(program, 0).ops[0].recv_bytes_per_peer.empty());
}

TEST(IssueSchedule, BuffersFitTheLargestOpOfEachKind) {
  const StepProgram program = two_rank_program();
  const BufferBytes rank0 = make_issue_schedule(program, 0).buffers;
  EXPECT_EQ(rank0.gemm_a, 2 * 4 * 16 * 2); // groups·m·k bf16
  EXPECT_EQ(rank0.gemm_b, 2 * 16 * 8 * 2); // groups·k·n
  EXPECT_EQ(rank0.gemm_c, 2 * 4 * 8 * 2);  // groups·m·n
  EXPECT_EQ(rank0.gemm_c_fp32, 0);
  EXPECT_EQ(rank0.memory_bound, 1000);
  EXPECT_EQ(rank0.communication, 400); // sends 400, receives 300
  // Rank 1 sends 250 but receives 350.
  EXPECT_EQ(make_issue_schedule(program, 1).buffers.communication, 350);
}

TEST(IssueSchedule, Fp8GemmsAreRefusedNamingTheOp) {
  StepProgram program = two_rank_program();
  std::get<GemmShape>(program.programs[1].ops[2].shape).dtype = GemmDtype::fp8;
  EXPECT_NO_THROW(make_issue_schedule(program, 0));
  try {
    make_issue_schedule(program, 1);
    FAIL() << "fp8 accepted";
  } catch (const InputError& error) {
    EXPECT_EQ(error.field(), "program: op 2 layer0.moe.fc2.fwd");
  }
}

TEST(IssueSchedule, AnAllToAllVWithoutItsPeerOpIsRefused) {
  StepProgram program = two_rank_program();
  program.programs[1].ops[1].name = "renamed";
  EXPECT_THROW(make_issue_schedule(program, 0), InputError);
}

} // namespace
} // namespace foldplan::runtime
