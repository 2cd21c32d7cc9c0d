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
}

} // namespace
} // namespace foldplan::report
