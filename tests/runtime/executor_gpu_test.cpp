// The executor on real GPUs: a tiny program of every op kind on one GPU (each op timed, times
// that scale as the work does), and on two GPUs NCCL groups split from the world with a pipeline
// transfer, plus the watchdog ending a send that nobody receives.
#include "runtime/executor.hpp"

#include <chrono>

#include <gtest/gtest.h>

#include "tests/gpu_test_support.hpp"

namespace foldplan::runtime {
namespace {

ExecutorOptions quick_options(int local_gpus) {
  ExecutorOptions options;
  options.local_gpus = local_gpus;
  options.warmup_steps = 1;
  options.timed_steps = 3;
  options.timeout_s = 60;
  return options;
}

// World 1 with a one-rank "solo" family, so every collective kind runs through NCCL.
StepProgram every_op_kind() {
  StepProgram program;
  program.world_size = 1;
  program.groups = {{.id = 0, .name = "solo", .members = {{0}}}};
  RankProgram ops{.ranks = {0}, .ops = {}};
  append_op(ops, {.name = "gemm4096", .shape = GemmShape{.m = 4096, .n = 4096, .k = 4096}});
  append_op(ops, {.name = "gemm8192", .shape = GemmShape{.m = 8192, .n = 8192, .k = 8192}});
  append_op(ops,
            {.name = "grouped", .shape = GemmShape{.m = 1024, .n = 4096, .k = 4096, .groups = 8}});
  append_op(ops, {.name = "wgrad_fp32",
                  .shape = GemmShape{.m = 4096, .n = 4096, .k = 4096, .accumulate_fp32 = true}});
  const AttentionOpShape attention{.batch = 1,
                                   .heads = 32,
                                   .kv_heads = 8,
                                   .seq_q = 4096,
                                   .seq_kv = 4096,
                                   .qk_head_dim = 128,
                                   .v_head_dim = 128};
  const int forward =
      append_op(ops, {.name = "attn.fwd", .kind = OpKind::attention, .shape = attention});
  AttentionOpShape backward = attention;
  backward.backward = true;
  append_op(ops,
            {.name = "attn.bwd", .kind = OpKind::attention, .deps = {forward}, .shape = backward});
  append_op(ops, {.name = "stream4GB",
                  .kind = OpKind::memory_bound,
                  .shape = MemoryBoundShape{.bytes = 4e9, .kernels = 1}});
  append_op(ops, {.name = "router_chain",
                  .kind = OpKind::memory_bound,
                  .shape = MemoryBoundShape{.bytes = 1e6, .kernels = 12}});
  int last = 0;
  for (const CollectiveOp kind :
       {CollectiveOp::all_reduce, CollectiveOp::all_gather, CollectiveOp::reduce_scatter,
        CollectiveOp::all_to_all, CollectiveOp::all_to_all_v}) {
    CollectiveShape shape{.op = kind, .group_id = 0, .bytes = 64e6, .send_bytes_per_peer = {}};
    if (kind == CollectiveOp::all_to_all_v)
      shape.send_bytes_per_peer = {64e6};
    last = append_op(ops, {.name = std::string(collective_op_name(kind)),
                           .kind = OpKind::collective,
                           .stream = Stream::tp_comm,
                           .deps = {0},
                           .shape = shape});
  }
  append_op(
      ops,
      {.name = "after_comm", .deps = {last}, .shape = GemmShape{.m = 256, .n = 256, .k = 256}});
  program.programs = {ops};
  validate_step_program(program);
  return program;
}

TEST(ExecutorGpu, EveryOpKindRunsAndIsTimedOnOneGpu) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(1);
  const StepProgram program = every_op_kind();
  const ExecutionResult result = execute_step_program(program, quick_options(1));
  ASSERT_EQ(result.ranks.size(), 1u);
  const std::vector<double>& times = result.ranks[0].op_time_s;
  ASSERT_EQ(times.size(), program.programs[0].ops.size());
  double longest = 0;
  for (std::size_t index = 0; index < times.size(); ++index) {
    EXPECT_GT(times[index], 0) << program.programs[0].ops[index].name;
    longest = std::max(longest, times[index]);
  }
  EXPECT_GE(result.ranks[0].step_time_s, longest);
  // Every op starts after the step's start and after each op it depends on ends (up to the
  // events' 0.5 µs resolution), and ends within the step.
  const std::vector<double>& starts = result.ranks[0].op_start_s;
  ASSERT_EQ(starts.size(), times.size());
  constexpr double kEventResolution_s = 1e-6;
  for (std::size_t index = 0; index < starts.size(); ++index) {
    const Op& op = program.programs[0].ops[index];
    EXPECT_GE(starts[index], 0) << op.name;
    EXPECT_LE(starts[index] + times[index], result.ranks[0].step_time_s + kEventResolution_s)
        << op.name;
    for (const int dep : op.deps) {
      const auto position = static_cast<std::size_t>(dep);
      EXPECT_GE(starts[index] + kEventResolution_s, starts[position] + times[position]) << op.name;
    }
  }
  // 8× the FLOPs: between 4× and 12× the time (the small one is less efficient).
  EXPECT_GT(times[1] / times[0], 4.0);
  EXPECT_LT(times[1] / times[0], 12.0);
  // 4096³ bf16: 137 GFLOP at 200–990 TFLOP/s.
  EXPECT_GT(times[0], 137.4e9 / 990e12);
  EXPECT_LT(times[0], 137.4e9 / 200e12);
  // 4 GB through HBM: between 0.5 and 5 TB/s (H100 3.35, H200 4.8 peak).
  EXPECT_GT(times[6], 4e9 / 5e12);
  EXPECT_LT(times[6], 4e9 / 0.5e12);
  EXPECT_FALSE(result.device.empty());
}

StepProgram two_rank_pipeline(bool matched) {
  StepProgram program;
  program.world_size = 2;
  program.groups = {{.id = 0, .name = "pp", .members = {{0, 1}}},
                    {.id = 1, .name = "dp", .members = {{0}, {1}}}};
  RankProgram first{.ranks = {0}, .ops = {}}, second{.ranks = {1}, .ops = {}};
  const int fc =
      append_op(first, {.name = "fc", .shape = GemmShape{.m = 2048, .n = 2048, .k = 2048}});
  append_op(first, {.name = "send.act",
                    .kind = OpKind::send,
                    .stream = Stream::pp_comm,
                    .deps = {fc},
                    .shape = PeerTransfer{.group_id = 0, .peer_index = 1, .bytes = 8e6}});
  if (matched) {
    append_op(second, {.name = "recv.act",
                       .kind = OpKind::recv,
                       .stream = Stream::pp_comm,
                       .shape = PeerTransfer{.group_id = 0, .peer_index = 0, .bytes = 8e6}});
  }
  append_op(second, {.name = "fc", .shape = GemmShape{.m = 2048, .n = 2048, .k = 2048}});
  for (RankProgram* program_of : {&first, &second}) {
    append_op(*program_of, {.name = "grad_ar",
                            .kind = OpKind::collective,
                            .stream = Stream::dp_comm,
                            .shape = CollectiveShape{.op = CollectiveOp::all_reduce,
                                                     .group_id = 0,
                                                     .bytes = 16e6,
                                                     .send_bytes_per_peer = {}}});
  }
  program.programs = {first, second};
  validate_step_program(program);
  return program;
}

TEST(ExecutorGpu, SplitGroupsCarryTransfersAndCollectivesOnTwoGpus) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(2);
  const ExecutionResult result = execute_step_program(two_rank_pipeline(true), quick_options(2));
  ASSERT_EQ(result.ranks.size(), 2u);
  for (const RankMeasurement& rank : result.ranks) {
    for (const double time : rank.op_time_s)
      EXPECT_GT(time, 0);
    EXPECT_EQ(rank.op_start_s.size(), rank.op_time_s.size()); // gathered from both ranks
  }
}

TEST(ExecutorGpu, ASendNobodyReceivesEndsAtTheTimeoutNamingTheOp) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(2);
  ExecutorOptions options = quick_options(2);
  options.timeout_s = 3;
  const auto start = std::chrono::steady_clock::now();
  try {
    execute_step_program(two_rank_pipeline(false), options);
    FAIL() << "an unmatched send completed";
  } catch (const ExecutionError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("timed out"), std::string::npos) << message;
    EXPECT_NE(message.find("rank "), std::string::npos) << message;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
}

} // namespace
} // namespace foldplan::runtime
