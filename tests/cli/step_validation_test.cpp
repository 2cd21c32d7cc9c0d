// `foldplan validate`'s comparison on a hand-made step (tests/cli/validation_fixture.hpp): the
// step, every program's step and every op class, with predicted / measured − 1 computed by hand;
// its JSON as `foldplan report --validation` reads it; its table.
#include "cli/step_validation.hpp"

#include <gtest/gtest.h>

#include "report/validation_file.hpp"
#include "tests/cli/validation_fixture.hpp"

namespace foldplan::cli {
namespace {

using testing_cli::validation_measured;
using testing_cli::validation_prediction;
using testing_cli::validation_program;

StepValidation fixture_validation() {
  const StepProgram program = validation_program();
  return compare_step(program, validation_measured(program), validation_prediction(program));
}

void expect_row(const ValidationRow& row, const std::string& name, int ops, double measured_s,
                double predicted_s, double relative_error) {
  EXPECT_EQ(row.name, name);
  EXPECT_EQ(row.ops, ops) << name;
  EXPECT_NEAR(row.measured_s, measured_s, 1e-15) << name;
  EXPECT_NEAR(row.predicted_s, predicted_s, 1e-15) << name;
  EXPECT_NEAR(row.relative_error(), relative_error, 1e-12) << name;
}

TEST(StepValidation, TheStepIsTheSlowestRankAgainstTheSimulatedStep) {
  const StepValidation validation = fixture_validation();
  // Rank 1's 9.5 ms against the simulated 5.5 ms (rank 2's attention 4 ms + norm 1.5 ms).
  expect_row(validation.step, "step", 0, 0.0095, 0.0055, 0.0055 / 0.0095 - 1);
  EXPECT_EQ(validation.slowest_rank, 1);
  EXPECT_EQ(validation.slowest_program, 0u);
}

TEST(StepValidation, EveryProgramComparesItsSlowestRankByOpClass) {
  const StepValidation validation = fixture_validation();
  ASSERT_EQ(validation.programs.size(), 2u);
  const ProgramValidation& shared = validation.programs[0];
  EXPECT_EQ(shared.ranks, (std::vector<std::int64_t>{0, 1}));
  EXPECT_EQ(shared.measured_rank, 1);
  // Rank 1 finishes at 5 ms in the simulation: fc1 0–3 ms, the all-reduce 3–5 ms.
  expect_row(shared.step, "step", 0, 0.0095, 0.005, 0.005 / 0.0095 - 1);
  ASSERT_EQ(shared.classes.size(), 2u);
  expect_row(shared.classes[0], "GEMM", 1, 0.0036, 0.003, -1.0 / 6);
  expect_row(shared.classes[1], "all-reduce", 1, 0.0028, 0.002, 0.002 / 0.0028 - 1);
  const ProgramValidation& own = validation.programs[1];
  EXPECT_EQ(own.measured_rank, 2);
  expect_row(own.step, "step", 0, 0.008, 0.0055, 0.0055 / 0.008 - 1);
  ASSERT_EQ(own.classes.size(), 2u);
  expect_row(own.classes[0], "attention", 1, 0.005, 0.004, -0.2);
  expect_row(own.classes[1], "memory-bound", 1, 0.002, 0.0015, -0.25);
}

TEST(StepValidation, NothingMeasuredHasNoError) {
  EXPECT_EQ(
      (ValidationRow{.name = "GEMM", .ops = 1, .measured_s = 0, .predicted_s = 1}).relative_error(),
      0.0);
}

TEST(StepValidation, ItsJsonIsWhatReportReadsPlusWhatRan) {
  const StepProgram program = validation_program();
  const runtime::MeasuredStep measured = validation_measured(program);
  const StepValidation validation = compare_step(program, measured, validation_prediction(program));
  const nlohmann::json json = validation_to_json(validation, measured,
                                                 {.plan_path = "plan.json",
                                                  .model = "mixtral-8x7b",
                                                  .layers = 2,
                                                  .routing = "balanced",
                                                  .calibration = "built-in H100-SXM5-80GB",
                                                  .attention_note = std::nullopt});
  EXPECT_EQ(json["schema"], "foldplan.validation/1");
  EXPECT_EQ(json["plan"], "plan.json");
  EXPECT_EQ(json["model"], "mixtral-8x7b");
  EXPECT_EQ(json["layers"], 2);
  EXPECT_EQ(json["device"], "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(json["world_size"], 3);
  EXPECT_EQ(json["routing"], "balanced");
  EXPECT_EQ(json["calibration"], "built-in H100-SXM5-80GB");
  EXPECT_EQ(json["slowest_rank"], 1);
  EXPECT_NEAR(json["step"]["relative_error"].get<double>(), 0.0055 / 0.0095 - 1, 1e-12);
  EXPECT_EQ(json["GEMM"]["ops"], 1);
  ASSERT_EQ(json["programs"].size(), 2u);
  EXPECT_EQ(json["programs"][1]["ranks"], nlohmann::json::array({2}));
  EXPECT_EQ(json["programs"][1]["measured_rank"], 2);
  EXPECT_NEAR(json["programs"][1]["step"]["relative_error"].get<double>(), 0.0055 / 0.008 - 1,
              1e-12);
  EXPECT_NEAR(json["programs"][1]["classes"]["memory-bound"]["predicted_s"].get<double>(), 0.0015,
              1e-15);
  ASSERT_EQ(json["ops_by_name"].size(), 2u);
  EXPECT_EQ(json["ops_by_name"][0]["name"], "tp_ar.fwd");
  EXPECT_EQ(json["ops_by_name"][0]["ops"], 1);
  EXPECT_DOUBLE_EQ(json["ops_by_name"][0]["measured_s"].get<double>(), 0.0028);

  // The report reads the step and the slowest rank's classes, and nothing of what ran.
  const std::vector<report::ValidationEntry> entries = report::validation_from_json(json);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].name, "step");
  EXPECT_DOUBLE_EQ(entries[0].measured_s, 0.0095);
  EXPECT_DOUBLE_EQ(entries[0].predicted_s, 0.0055);
  EXPECT_EQ(entries[1].name, "GEMM");
  EXPECT_EQ(entries[2].name, "all-reduce");
  EXPECT_DOUBLE_EQ(entries[2].measured_s, 0.0028);
}

TEST(StepValidation, OpGroupsDropTheLayerOnly) {
  EXPECT_EQ(op_group_name("layer12.moe.fc1.wgrad"), "moe.fc1.wgrad");
  EXPECT_EQ(op_group_name("layer0.attn.core.fwd"), "attn.core.fwd");
  EXPECT_EQ(op_group_name("embedding.lookup.fwd"), "embedding.lookup.fwd");
  EXPECT_EQ(op_group_name("optimizer.adam"), "optimizer.adam");
  EXPECT_EQ(op_group_name("layers.fc1"), "layers.fc1"); // no layer number: not a layer prefix
  EXPECT_EQ(op_group_name("layer3"), "layer3");
}

TEST(StepValidation, OpGroupsOfTheSlowestRankLargestDifferenceFirst) {
  // Rank 1 (the slowest) ran fc1 3.6 ms (predicted 3.0) and the all-reduce 2.8 ms (2.0): the
  // all-reduce is 0.8 ms off, fc1 0.6 ms.
  const StepValidation validation = fixture_validation();
  ASSERT_EQ(validation.ops_by_name.size(), 2u);
  expect_row(validation.ops_by_name[0], "tp_ar.fwd", 1, 0.0028, 0.002, 0.002 / 0.0028 - 1);
  expect_row(validation.ops_by_name[1], "fc1.fwd", 1, 0.0036, 0.003, 0.003 / 0.0036 - 1);
}

TEST(StepValidation, TheTableShowsTheStepTheClassesAndEveryProgram) {
  const std::string table = validation_table(fixture_validation());
  EXPECT_EQ(table, "rank 1 (slowest)  ops  measured ms  predicted ms   error\n"
                   "----------------  ---  -----------  ------------  ------\n"
                   "step                         9.500         5.500  -42.1%\n"
                   "GEMM                1        3.600         3.000  -16.7%\n"
                   "all-reduce          1        2.800         2.000  -28.6%\n"
                   "(error = predicted / measured - 1; class times are op times summed over "
                   "the step, and ops on different streams overlap)\n"
                   "\n"
                   "largest differences  ops  measured ms  predicted ms   error\n"
                   "-------------------  ---  -----------  ------------  ------\n"
                   "tp_ar.fwd              1        2.800         2.000  -28.6%\n"
                   "fc1.fwd                1        3.600         3.000  -16.7%\n"
                   "(ops of one name summed over layers and micro-batches, on the slowest rank)\n"
                   "\n"
                   "every program's step (its slowest rank; predicted: the rank's simulated "
                   "finish):\n"
                   "program ranks  measured rank  measured ms  predicted ms   error\n"
                   "-------------  -------------  -----------  ------------  ------\n"
                   "0,1                        1        9.500         5.000  -47.4%\n"
                   "2                          2        8.000         5.500  -31.2%\n");
}

} // namespace
} // namespace foldplan::cli
