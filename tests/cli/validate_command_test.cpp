// `foldplan validate` refusals that need no GPU: every bad flag in one line with exit code 2,
// checked before the GPU runtime is asked for; in a build without CUDA, as CI's, the one-line
// refusal naming `validate`; with CUDA but no visible GPU, the GPU-count refusal.
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "tests/cli/run_foldplan.hpp"

namespace {

using foldplan::testing_cli::CommandResult;
using foldplan::testing_cli::expect_input_error;
using foldplan::testing_cli::run_foldplan;
using foldplan::testing_cli::write_estimated_plan;

// A plan file of its own for each test: ctest runs the tests of this file at once.
std::string one_gpu_plan(const std::string& name) {
  return write_estimated_plan(name, "--model mixtral-8x7b --cluster dgx-h100 --gpus 1 --seq 4096 "
                                    "--gbs 8 --mbs 1");
}

TEST(ValidateCommand, RefusesInOneLineWithoutAGpuRuntime) {
  foldplan::testing_cli::expect_gpu_refusal("validate", one_gpu_plan("validate_refusal.json"));
}

TEST(ValidateCommand, BadFlagsAreOneLineBeforeAnythingRuns) {
  const std::string plan = one_gpu_plan("validate_flags.json");
  expect_input_error("validate " + plan + " --steps 0", "--steps: 0 is not a positive integer");
  expect_input_error("validate " + plan + " --warmup -1", "--warmup: -1 is negative");
  expect_input_error("validate " + plan + " --timeout 0",
                     "--timeout: 0 is not a positive number of seconds");
  expect_input_error("validate " + plan + " --layers 0", "--layers: 0 is not a positive integer");
  expect_input_error("validate " + plan + " --routing zipf:x",
                     "--routing: \"zipf:x\": \"x\" is not a positive number");
  const std::string missing = testing::TempDir() + "validate_no_such_calibration.json";
  expect_input_error("validate " + plan + " --calibration " + missing,
                     missing + ": cannot open file: No such file or directory");
  const std::string output = testing::TempDir() + "validate_same.json";
  expect_input_error("validate " + plan + " -o " + output + " --trace " + output,
                     "--trace: " + output + " is also -o's file; give each output its own");
  expect_input_error("validate " + plan + " --measured " + output + " --trace " + output,
                     "--trace: " + output +
                         " is also --measured's file; give each output its "
                         "own");
  expect_input_error("validate", "plan is required");
}

TEST(ValidateCommand, ACalibrationFileIsValidatedBeforeTheGpuIsAskedFor) {
  const std::string path = testing::TempDir() + "validate_bad_calibration.json";
  std::FILE* file = std::fopen(path.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fputs(R"({"gpu": "H100-SXM5-80GB", "surprise": 1})", file);
  std::fclose(file);
  const CommandResult result = run_foldplan(
      "validate " + one_gpu_plan("validate_calibration.json") + " --calibration " + path);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_EQ(result.output.rfind("foldplan: error: calibration.", 0), 0u) << result.output;
  EXPECT_EQ(result.output.find('\n'), result.output.size() - 1) << result.output;
}

} // namespace
