#include "report/validation_file.hpp"

#include <gtest/gtest.h>

#include "core/errors.hpp"

namespace foldplan::report {
namespace {

TEST(ValidationFile, ReadsEntriesStepFirst) {
  const auto entries = validation_from_json(nlohmann::json::parse(R"({
    "gemm": {"predicted_s": 0.9, "measured_s": 0.99},
    "step": {"predicted_s": 1.5, "measured_s": 1.2},
    "ep_comm": {"predicted_s": 0.2, "measured_s": 0.2}})"));
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].name, "step");
  EXPECT_EQ(entries[1].name, "ep_comm");
  EXPECT_EQ(entries[2].name, "gemm");
  EXPECT_NEAR(entries[0].error(), -0.2, 1e-12);
  EXPECT_NEAR(entries[2].error(), 0.1, 1e-12);
  EXPECT_EQ(entries[1].error(), 0);
}

TEST(ValidationFile, SkipsWhatValidateWritesBesideTheEntries) {
  const auto entries = validation_from_json(nlohmann::json::parse(R"({
    "schema": "foldplan.validation/1", "plan": "plan.json", "model": "mixtral-8x7b",
    "layers": 2, "device": "NVIDIA H100 80GB HBM3", "world_size": 1, "routing": "balanced",
    "calibration": "built-in H100-SXM5-80GB", "warmup_steps": 1, "timed_steps": 3,
    "slowest_rank": 0, "attention_note": "none",
    "programs": [{"ranks": [0], "step": {"measured_s": 2}}],
    "step": {"measured_s": 0.2, "predicted_s": 0.25, "relative_error": 0.25},
    "GEMM": {"ops": 96, "measured_s": 0.1, "predicted_s": 0.08, "relative_error": -0.2}})"));
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, "step");
  EXPECT_DOUBLE_EQ(entries[0].measured_s, 0.2);
  EXPECT_DOUBLE_EQ(entries[0].predicted_s, 0.25);
  EXPECT_EQ(entries[1].name, "GEMM");
  EXPECT_NEAR(entries[1].error(), 0.25, 1e-12);
}

void expect_error(const char* text, const std::string& message) {
  try {
    validation_from_json(nlohmann::json::parse(text));
    ADD_FAILURE() << "accepted " << text;
  } catch (const InputError& error) {
    EXPECT_EQ(std::string(error.what()), message);
  }
}

TEST(ValidationFile, NamesTheFieldOfEveryMistake) {
  expect_error("[]", "validation: is not an object of {name: {predicted_s, measured_s}}");
  expect_error("{}", "validation: has no entries");
  expect_error(R"({"step": {"predicted_s": 1}})", "validation.step.measured_s: is missing");
  expect_error(R"({"step": {"predicted_s": -1, "measured_s": 1}})",
               "validation.step.predicted_s: -1 is negative");
  expect_error(R"({"step": {"predicted_s": 1, "measured_s": 1, "measured": 2}})",
               "validation.step.measured: unknown key (check its spelling, or remove it)");
  expect_error(R"({"step": {"predicted_s": 1, "measured_s": 1, "relative_eror": 0}})",
               "validation.step.relative_eror: unknown key (check its spelling, or remove it)");
  expect_error(R"({"step": {"predicted_s": 1, "measured_s": 1, "relative_error": "big"}})",
               "validation.step.relative_error: expected a number, got string \"big\"");
  expect_error(
      R"({"schema": "foldplan.validation/2", "step": {"predicted_s": 1, "measured_s": 1}})",
      "validation.schema: \"foldplan.validation/2\" is newer than this foldplan reads "
      "(foldplan.validation/1); upgrade foldplan");
  expect_error(R"({"schema": "foldplan.validation/1", "plan": "p.json"})",
               "validation: has no entries");
  expect_error(R"({"schema": "foldplan.validation/1", "plann": "p.json"})",
               "validation.plann: expected an object, got string \"p.json\"");
}

} // namespace
} // namespace foldplan::report
