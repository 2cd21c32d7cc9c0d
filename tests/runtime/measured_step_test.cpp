#include "runtime/measured_step.hpp"

#include <gtest/gtest.h>

#include "core/errors.hpp"

namespace foldplan::runtime {
namespace {

// Three ranks: ranks 0 and 2 share a program (attention then a TP all-reduce), rank 1 has its own
// (a GEMM and a pipeline send).
StepProgram three_rank_program() {
  StepProgram program;
  program.world_size = 3;
  program.groups = {{.id = 0, .name = "tp", .members = {{0, 2}}},
                    {.id = 1, .name = "pp", .members = {{0, 1}, {2}}}};
  RankProgram shared{.ranks = {0, 2}, .ops = {}};
  append_op(shared, {.name = "layer0.attn.core.fwd",
                     .kind = OpKind::attention,
                     .shape = AttentionOpShape{.batch = 1,
                                               .heads = 2,
                                               .kv_heads = 1,
                                               .seq_q = 8,
                                               .seq_kv = 8,
                                               .qk_head_dim = 64,
                                               .v_head_dim = 64}});
  append_op(
      shared,
      {.name = "layer0.attn.tp_ar.fwd",
       .kind = OpKind::collective,
       .stream = Stream::tp_comm,
       .deps = {0},
       .shape = CollectiveShape{
           .op = CollectiveOp::all_reduce, .group_id = 0, .bytes = 64, .send_bytes_per_peer = {}}});
  RankProgram own{.ranks = {1}, .ops = {}};
  append_op(own, {.name = "layer1.mlp.fc1.fwd", .shape = GemmShape{.m = 2, .n = 2, .k = 2}});
  append_op(own, {.name = "layer1.mlp.fc2.fwd", .shape = GemmShape{.m = 2, .n = 2, .k = 2}});
  program.programs = {shared, own};
  validate_step_program(program);
  return program;
}

std::vector<RankMeasurement> measurements() {
  return {{.rank = 0, .step_time_s = 0.010, .op_time_s = {0.004, 0.003}, .op_start_s = {0, 0.005}},
          {.rank = 1, .step_time_s = 0.012, .op_time_s = {0.005, 0.006}, .op_start_s = {0, 0.006}},
          {.rank = 2,
           .step_time_s = 0.011,
           .op_time_s = {0.0045, 0.0035},
           .op_start_s = {0.001, 0.0075}}};
}

TEST(MeasuredStep, TheStepIsTheSlowestRankAndEachProgramReportsItsSlowestRank) {
  const StepProgram program = three_rank_program();
  const MeasuredStep measured =
      summarize_measurements(program, measurements(), "NVIDIA H100 80GB HBM3", 1, 3);
  EXPECT_DOUBLE_EQ(measured.step_time_s, 0.012);
  EXPECT_EQ(measured.slowest_rank, 1);
  EXPECT_EQ(measured.rank_step_time_s, (std::vector<double>{0.010, 0.012, 0.011}));
  ASSERT_EQ(measured.programs.size(), 2u);
  EXPECT_EQ(measured.programs[0].measured_rank, 2); // 0.011 s beats rank 0's 0.010 s
  EXPECT_EQ(measured.programs[0].op_time_s, (std::map<int, double>{{0, 0.0045}, {1, 0.0035}}));
  // The start offsets come from the same rank as the times.
  EXPECT_EQ(measured.programs[0].op_start_s, (std::map<int, double>{{0, 0.001}, {1, 0.0075}}));
  EXPECT_EQ(measured.programs[1].measured_rank, 1);
  EXPECT_EQ(measured.programs[1].op_start_s, (std::map<int, double>{{0, 0}, {1, 0.006}}));
}

TEST(MeasuredStep, MeasurementsWithoutStartOffsetsLeaveThemEmpty) {
  std::vector<RankMeasurement> ranks = measurements();
  for (RankMeasurement& rank : ranks)
    rank.op_start_s.clear();
  const MeasuredStep measured = summarize_measurements(three_rank_program(), ranks, "H100", 1, 3);
  EXPECT_TRUE(measured.programs[0].op_start_s.empty());
  EXPECT_EQ(measured.programs[0].op_time_s.size(), 2u);
  EXPECT_FALSE(measured_step_to_json(measured)["programs"][0].contains("op_start_s"));
}

TEST(MeasuredStep, JsonRoundTripsAndIsStrict) {
  MeasuredStep measured =
      summarize_measurements(three_rank_program(), measurements(), "H100", 2, 5);
  measured.moe_checks = {{.layer = "tokens 8", .rank = 0, .name = "conservation", .passed = true}};
  measured.metadata = {{"predicted_step_time_s", 0.009}};
  const nlohmann::json json = measured_step_to_json(measured);
  EXPECT_EQ(json["schema"], "foldplan.measured/1");
  EXPECT_EQ(json["programs"][0]["op_time_s"]["1"], 0.0035);
  EXPECT_EQ(json["programs"][0]["op_start_s"]["1"], 0.0075);
  EXPECT_EQ(measured_step_from_json(json), measured);
  // A file written before start offsets were recorded still reads, with none.
  nlohmann::json older = json;
  for (nlohmann::json& program : older["programs"])
    program.erase("op_start_s");
  const MeasuredStep read_older = measured_step_from_json(older);
  EXPECT_TRUE(read_older.programs[0].op_start_s.empty());
  EXPECT_EQ(read_older.programs[0].op_time_s, measured.programs[0].op_time_s);
  nlohmann::json bad_start = json;
  bad_start["programs"][1]["op_start_s"]["0"] = "soon";
  EXPECT_THROW(measured_step_from_json(bad_start), InputError);
  nlohmann::json unknown = json;
  unknown["surprise"] = 1;
  EXPECT_THROW(measured_step_from_json(unknown), InputError);
  nlohmann::json newer = json;
  newer["schema"] = "foldplan.measured/2";
  EXPECT_THROW(measured_step_from_json(newer), InputError);
  nlohmann::json bad_id = json;
  bad_id["programs"][0]["op_time_s"]["x"] = 1.0;
  EXPECT_THROW(measured_step_from_json(bad_id), InputError);
}

TEST(MeasuredStep, TimesSumByOpClassInAFixedOrder) {
  const StepProgram program = three_rank_program();
  const auto shared = time_by_op_class(program.programs[0], {{0, 0.004}, {1, 0.003}});
  ASSERT_EQ(shared.size(), 2u);
  EXPECT_EQ(shared[0].op_class, "attention");
  EXPECT_DOUBLE_EQ(shared[0].time_s, 0.004);
  EXPECT_EQ(shared[1].op_class, "all-reduce");
  EXPECT_EQ(shared[1].ops, 1);
  const auto own = time_by_op_class(program.programs[1], {{0, 0.005}, {1, 0.006}});
  ASSERT_EQ(own.size(), 1u);
  EXPECT_EQ(own[0].op_class, "GEMM");
  EXPECT_EQ(own[0].ops, 2);
  EXPECT_DOUBLE_EQ(own[0].time_s, 0.011);
}

} // namespace
} // namespace foldplan::runtime
