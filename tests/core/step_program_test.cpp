// Tests for the step program: exact JSON round trip, one test per validation rule with its exact
// message, and programs shared by several ranks.
#include "core/step_program.hpp"

#include <filesystem>

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "core/step_program_json.hpp"

namespace foldplan {
namespace {

using nlohmann::json;

template <typename Action> std::string error_of(Action&& action) {
  try {
    action();
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}

constexpr int kTpFamily = 0;
constexpr int kPpFamily = 1;
constexpr int kEpFamily = 2;

// Two ranks, each with its own program. The tp, pp and ep families all span both ranks, so every
// op that communicates has its partner on the other rank: rank 0 sends what rank 1 receives.
StepProgram two_rank_program() {
  StepProgram program;
  program.world_size = 2;
  program.groups = {
      {kTpFamily, "tp", {{0, 1}}}, {kPpFamily, "pp", {{0, 1}}}, {kEpFamily, "ep", {{0, 1}}}};
  program.metadata = {{"model", "tiny-moe"}, {"parallel", {{"tp", 2}, {"ep", 2}}}};

  RankProgram first_stage{{0}, {}};
  const int qkv = append_op(first_stage, {.name = "layer0.attn.qkv.fwd",
                                          .micro_batch = 0,
                                          .layer = 0,
                                          .shape = GemmShape{4096, 1536, 4096}});
  const int reduce = append_op(
      first_stage,
      {.name = "layer0.attn.proj.allreduce.fwd",
       .kind = OpKind::collective,
       .stream = Stream::tp_comm,
       .micro_batch = 0,
       .layer = 0,
       .deps = {qkv},
       .shape = CollectiveShape{CollectiveOp::all_reduce, kTpFamily, 8.0 * 1024 * 1024, {}}});
  const int dispatch = append_op(
      first_stage,
      {.name = "layer0.moe.dispatch.fwd",
       .kind = OpKind::collective,
       .stream = Stream::ep_comm,
       .micro_batch = 0,
       .layer = 0,
       .deps = {reduce},
       .shape = CollectiveShape{CollectiveOp::all_to_all_v, kEpFamily, 400.5, {100.25, 300.25}}});
  const int experts = append_op(
      first_stage,
      {.name = "layer0.moe.fc1.fwd",
       .micro_batch = 0,
       .layer = 0,
       .deps = {dispatch},
       .shape = GemmShape{.m = 512, .n = 14336, .k = 4096, .groups = 4, .dtype = GemmDtype::fp8}});
  const int router =
      append_op(first_stage, {.name = "layer0.moe.topk.fwd",
                              .kind = OpKind::memory_bound,
                              .micro_batch = 0,
                              .layer = 0,
                              .deps = {experts},
                              .shape = MemoryBoundShape{.bytes = 4096, .kernels = 29}});
  append_op(first_stage, {.name = "stage0.send.fwd",
                          .kind = OpKind::send,
                          .stream = Stream::pp_comm,
                          .micro_batch = 0,
                          .deps = {router},
                          .shape = PeerTransfer{kPpFamily, 1, 16777216, 7}});

  RankProgram second_stage{{1}, {}};
  const int received = append_op(second_stage, {.name = "stage1.recv.fwd",
                                                .kind = OpKind::recv,
                                                .stream = Stream::pp_comm,
                                                .micro_batch = 0,
                                                .shape = PeerTransfer{kPpFamily, 0, 16777216, 7}});
  const int attention = append_op(
      second_stage, {.name = "layer1.attn.core.bwd",
                     .kind = OpKind::attention,
                     .phase = Phase::backward_dgrad,
                     .micro_batch = 0,
                     .layer = 1,
                     .deps = {received},
                     .shape = AttentionOpShape{2, 16, 4, 4096, 4096, 192, 128, true, true}});
  const int wgrad = append_op(
      second_stage, {.name = "layer1.attn.proj.wgrad",
                     .phase = Phase::backward_wgrad,
                     .micro_batch = 0,
                     .layer = 1,
                     .deps = {attention},
                     .shape = GemmShape{.m = 4096, .n = 4096, .k = 8192, .accumulate_fp32 = true}});
  append_op(second_stage, {.name = "optimizer.step",
                           .kind = OpKind::memory_bound,
                           .phase = Phase::optimizer,
                           .deps = {wgrad},
                           .shape = MemoryBoundShape{1.5e9}});
  program.programs = {first_stage, second_stage};
  return program;
}

// The op whose shape a test edits: first rank program, op `index`.
Op& first_op(StepProgram& program, std::size_t index) {
  return program.programs[0].ops[index];
}

TEST(StepProgram, AppendOpNumbersOpsInOrder) {
  const StepProgram program = two_rank_program();
  for (std::size_t i = 0; i < program.programs[0].ops.size(); ++i)
    EXPECT_EQ(program.programs[0].ops[i].id, static_cast<int>(i));
}

TEST(StepProgram, HandBuiltProgramValidates) {
  EXPECT_NO_THROW(validate_step_program(two_rank_program()));
}

TEST(StepProgram, RoundTripsExactlyThroughJsonText) {
  const StepProgram program = two_rank_program();
  const std::string text = step_program_to_json(program).dump(2);
  const StepProgram read_back = step_program_from_json(json::parse(text));
  EXPECT_EQ(read_back, program);
  EXPECT_EQ(step_program_to_json(read_back).dump(2), text);
}

TEST(StepProgram, JsonPutsTheShapeUnderItsKindAndLeavesDefaultsOut) {
  const json written = step_program_to_json(two_rank_program());
  EXPECT_EQ(written["schema"], "foldplan.step/1");
  const json& qkv = written["programs"][0]["ops"][0];
  EXPECT_EQ(qkv, json::parse(R"({"id": 0, "name": "layer0.attn.qkv.fwd", "kind": "gemm",
      "stream": "compute", "phase": "forward", "micro_batch": 0, "layer": 0,
      "gemm": {"m": 4096, "n": 1536, "k": 4096, "dtype": "bf16"}})"));
  const json& dispatch = written["programs"][0]["ops"][2];
  EXPECT_EQ(dispatch["collective"], json::parse(R"({"op": "all_to_all_v", "group_id": 2,
      "bytes": 400.5, "send_bytes_per_peer": [100.25, 300.25]})"));
  EXPECT_EQ(written["programs"][0]["ops"][3]["gemm"]["groups"], 4);
  EXPECT_EQ(written["programs"][0]["ops"][4]["memory_bound"],
            json::parse(R"({"bytes": 4096.0, "kernels": 29})"));
  EXPECT_EQ(written["programs"][1]["ops"][2]["gemm"]["accumulate_fp32"], true);
}

TEST(StepProgram, SavesAndLoads) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "foldplan_step_program_test.json").string();
  const StepProgram program = two_rank_program();
  save_step_program(program, path);
  EXPECT_EQ(load_step_program(path), program);
  std::filesystem::remove(path);
}

TEST(StepProgram, ProgramSharedByRanksZeroAndTwoValidates) {
  // TP = 2, DP = 2 on four ranks, TP innermost: TP groups {0, 1} and {2, 3}. Ranks 0 and 2 are
  // TP rank 0 of the two replicas and run one program; each uses its own TP group, and its TP
  // peer is position 1 of that group (rank 1 for rank 0, rank 3 for rank 2).
  StepProgram program;
  program.world_size = 4;
  program.groups = {{kTpFamily, "tp", {{0, 1}, {2, 3}}}, {kPpFamily, "dp", {{0, 2}, {1, 3}}}};
  RankProgram tp_rank_zero{{0, 2}, {}};
  const int gemm = append_op(tp_rank_zero, {.name = "fc1", .shape = GemmShape{8, 8, 8}});
  append_op(tp_rank_zero, {.name = "fc1.allreduce",
                           .kind = OpKind::collective,
                           .stream = Stream::tp_comm,
                           .deps = {gemm},
                           .shape = CollectiveShape{CollectiveOp::all_reduce, kTpFamily, 128, {}}});
  append_op(
      tp_rank_zero,
      {.name = "to.tp.peer", .kind = OpKind::send, .shape = PeerTransfer{kTpFamily, 1, 64, 0}});
  RankProgram tp_rank_one{{1, 3}, tp_rank_zero.ops};
  tp_rank_one.ops[2] = {.id = 2,
                        .name = "from.tp.peer",
                        .kind = OpKind::recv,
                        .shape = PeerTransfer{kTpFamily, 0, 64, 0}};
  program.programs = {tp_rank_zero, tp_rank_one};
  EXPECT_NO_THROW(validate_step_program(program));
  EXPECT_EQ(program_of_rank(program, 2), &program.programs[0]);
  EXPECT_EQ(*group_holding(*find_comm_group(program, kTpFamily), 2),
            (std::vector<std::int64_t>{2, 3}));
}

TEST(StepProgramValidation, UnknownGroup) {
  StepProgram program = two_rank_program();
  std::get<CollectiveShape>(first_op(program, 1).shape).group_id = 5;
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs[0].ops[1].collective.group_id: 5 names no group");
}

TEST(StepProgramValidation, GroupThatMissesARankOfTheProgram) {
  StepProgram program = two_rank_program();
  program.groups[0].members = {{1}};
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs[0].ops[1].collective.group_id: rank 0 is in no group of 0 (\"tp\")");
}

TEST(StepProgramValidation, DependencyOnALaterOp) {
  StepProgram program = two_rank_program();
  program.programs[1].ops[1].deps = {2};
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs[1].ops[1].deps[0]: 2 is not an earlier op");
}

TEST(StepProgramValidation, DuplicateOpId) {
  StepProgram program = two_rank_program();
  first_op(program, 2).id = 1;
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs[0].ops[2].id: 1 is the id of an earlier op");
}

TEST(StepProgramValidation, RankInTwoPrograms) {
  StepProgram program = two_rank_program();
  program.programs[1].ranks = {1, 0};
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs[1].ranks[1]: rank 0 already runs programs[0]");
}

TEST(StepProgramValidation, RankWithoutAProgram) {
  StepProgram program = two_rank_program();
  program.world_size = 3;
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs: rank 2 runs no program");
}

TEST(StepProgramValidation, RankOutsideTheWorld) {
  StepProgram program = two_rank_program();
  program.programs[1].ranks = {2};
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs[1].ranks[0]: rank 2 is outside the world of 2 ranks");
}

TEST(StepProgramValidation, SplitsThatDoNotSumToBytes) {
  StepProgram program = two_rank_program();
  std::get<CollectiveShape>(first_op(program, 2).shape).send_bytes_per_peer = {100, 200};
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs[0].ops[2].collective.send_bytes_per_peer: splits sum to 300 but "
            "bytes is 400.5");
}

TEST(StepProgramValidation, SplitsNotOnePerGroupMember) {
  StepProgram program = two_rank_program();
  std::get<CollectiveShape>(first_op(program, 2).shape).send_bytes_per_peer = {400.5};
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs[0].ops[2].collective.send_bytes_per_peer: has 1 splits for a group "
            "of 2 ranks");
}

TEST(StepProgramValidation, SplitsOnAnOrdinaryCollective) {
  StepProgram program = two_rank_program();
  std::get<CollectiveShape>(first_op(program, 1).shape).send_bytes_per_peer = {1, 2};
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs[0].ops[1].collective.send_bytes_per_peer: only all_to_all_v has "
            "per-peer splits, not all_reduce");
}

TEST(StepProgramValidation, NegativeSize) {
  StepProgram program = two_rank_program();
  std::get<GemmShape>(first_op(program, 0).shape).k = -1;
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs[0].ops[0].gemm.k: -1 is negative");
}

TEST(StepProgramValidation, KernelCountOutOfRange) {
  StepProgram program = two_rank_program();
  std::get<MemoryBoundShape>(first_op(program, 4).shape).kernels = 0;
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs[0].ops[4].memory_bound.kernels: 0 is not a kernel count from 1 to "
            "1024");
}

TEST(StepProgramValidation, PeerOutsideTheGroupOrItself) {
  StepProgram program = two_rank_program();
  std::get<PeerTransfer>(first_op(program, 5).shape).peer_index = 2;
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs[0].ops[5].send.peer_index: 2 is outside rank 0's group of 2 ranks");
  std::get<PeerTransfer>(first_op(program, 5).shape).peer_index = 0;
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs[0].ops[5].send.peer_index: 0 is rank 0 itself");
}

TEST(StepProgramValidation, ShapeThatDoesNotMatchTheKind) {
  StepProgram program = two_rank_program();
  first_op(program, 0).kind = OpKind::attention;
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.programs[0].ops[0]: kind attention carries a gemm shape");
}

TEST(StepProgramValidation, RankInTwoGroupsOfOneFamily) {
  StepProgram program = two_rank_program();
  program.groups[1].members = {{0, 1}, {1}};
  EXPECT_EQ(error_of([&] { validate_step_program(program); }),
            "program.groups[1].members[1][0]: rank 1 is already in members[0]");
}

TEST(StepProgramJson, NewerSchemaIsRefused) {
  json written = step_program_to_json(two_rank_program());
  written["schema"] = "foldplan.step/2";
  EXPECT_EQ(error_of([&] { step_program_from_json(written); }),
            "program.schema: \"foldplan.step/2\" is newer than this foldplan reads "
            "(foldplan.step/1); upgrade foldplan");
  written["schema"] = "foldplan.plan/1";
  EXPECT_EQ(error_of([&] { step_program_from_json(written); }),
            "program.schema: \"foldplan.plan/1\" is not a foldplan step program (expected "
            "\"foldplan.step/1\")");
}

TEST(StepProgramJson, UnknownKeyIsRefusedWithItsPath) {
  json written = step_program_to_json(two_rank_program());
  written["programs"][1]["ops"][1]["attention"]["window"] = 128;
  EXPECT_EQ(error_of([&] { step_program_from_json(written); }),
            "program.programs[1].ops[1].attention.window: unknown key (check its spelling, or "
            "remove it)");
  written = step_program_to_json(two_rank_program());
  written["programs"][0]["ops"][0]["collective"] = json::object();
  EXPECT_EQ(error_of([&] { step_program_from_json(written); }),
            "program.programs[0].ops[0].collective: unknown key (check its spelling, or remove "
            "it)");
}

TEST(StepProgramJson, WrongTypesAndEnumNamesAreRefusedWithTheirPath) {
  json written = step_program_to_json(two_rank_program());
  written["programs"][0]["ops"][1]["stream"] = "tp";
  EXPECT_EQ(error_of([&] { step_program_from_json(written); }),
            "program.programs[0].ops[1].stream: \"tp\" is not one of compute, tp_comm, ep_comm, "
            "dp_comm, pp_comm, cp_comm");
  written = step_program_to_json(two_rank_program());
  written["programs"][0]["ops"][1]["collective"]["bytes"] = "8MB";
  EXPECT_EQ(error_of([&] { step_program_from_json(written); }),
            "program.programs[0].ops[1].collective.bytes: expected a number, got string \"8MB\"");
  written = step_program_to_json(two_rank_program());
  written["groups"][0]["members"][0] = 0;
  EXPECT_EQ(error_of([&] { step_program_from_json(written); }),
            "program.groups[0].members[0]: expected an array of ranks, got 0");
}

TEST(StepProgramJson, ValidatesWhatItReads) {
  json written = step_program_to_json(two_rank_program());
  written["programs"][1]["ops"][1]["deps"] = {5};
  EXPECT_EQ(error_of([&] { step_program_from_json(written); }),
            "program.programs[1].ops[1].deps[0]: 5 is not an earlier op");
}

} // namespace
} // namespace foldplan
