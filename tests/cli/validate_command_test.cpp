// `foldplan validate` refusals that need no GPU: every bad flag in one line with exit code 2,
// checked before the GPU runtime is asked for; in a build without CUDA, as CI's, the one-line
// refusal naming `validate`; with CUDA but no visible GPU, the GPU-count refusal.
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "cli/layer_scaling.hpp"
#include "core/file_io.hpp"
#include "parallel/plan.hpp"
#include "runtime/measured_step.hpp"
#include "simulator/routed_lowering.hpp"
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

// A measured file of `plan` cut to `layers` layers, as `foldplan run -o` writes it: every op took
// 1 ms, one after another. `with_metadata`: naming the layers and routing it ran with.
std::string write_measured(const std::string& name, const std::string& plan_path,
                           std::int64_t layers, bool with_metadata) {
  using namespace foldplan;
  const Plan plan = cli::scale_plan_layers(load_plan(plan_path), layers);
  const StepProgram program = lower_routed_plan(plan, parse_routing_spec("balanced")).program;
  runtime::RankMeasurement rank{.rank = 0};
  for (std::size_t index = 0; index < program.programs.at(0).ops.size(); ++index) {
    rank.op_start_s.push_back(rank.step_time_s);
    rank.op_time_s.push_back(0.001);
    rank.step_time_s += 0.001;
  }
  runtime::MeasuredStep measured =
      runtime::summarize_measurements(program, {rank}, "test GPU", 1, 3);
  if (with_metadata)
    measured.metadata = {{"layers", layers}, {"routing", "balanced"}};
  const std::string path = testing::TempDir() + name;
  write_file_atomically(path, runtime::measured_step_to_json(measured).dump());
  return path;
}

TEST(ValidateCommand, FromAnEarlierRunPredictsAgainWithoutAGpu) {
  const std::string plan = one_gpu_plan("validate_from_plan.json");
  const std::string measured = write_measured("validate_from_measured.json", plan, 2, true);
  const nlohmann::json json =
      foldplan::testing_cli::run_json("validate " + plan + " --from " + measured + " --json");
  // Two Mixtral layers, eight micro-batches: every op 1 ms.
  const double ops = json["programs"][0]["classes"]["GEMM"]["ops"].get<double>() +
                     json["programs"][0]["classes"]["attention"]["ops"].get<double>() +
                     json["programs"][0]["classes"]["memory-bound"]["ops"].get<double>();
  EXPECT_NEAR(json["step"]["measured_s"].get<double>(), ops * 0.001, 1e-9);
  EXPECT_GT(json["step"]["predicted_s"].get<double>(), 0.1);
  EXPECT_EQ(json["layers"], 2);
  bool found = false;
  for (const nlohmann::json& group : json["ops_by_name"]) {
    if (group["name"] == "moe.fc1.wgrad") {
      found = true;
      EXPECT_EQ(group["ops"], 2 * 8); // layers × micro-batches
      EXPECT_NEAR(group["measured_s"].get<double>(), 16 * 0.001, 1e-12);
    }
  }
  EXPECT_TRUE(found);
}

TEST(ValidateCommand, FromAnotherPlanOrLayerCountIsRefused) {
  const std::string plan = one_gpu_plan("validate_from_other_plan.json");
  const std::string measured = write_measured("validate_from_two_layers.json", plan, 2, true);
  expect_input_error("validate " + plan + " --from " + measured + " --layers 3",
                     "--layers: 3 is not the 2 layers " + measured + " ran");
  // Without the layer count in the file the plan runs whole: 32 layers, not the 2 measured.
  const std::string bare = write_measured("validate_from_bare.json", plan, 2, false);
  expect_input_error("validate " + plan + " --from " + bare,
                     "--from " + bare +
                         ": was measured with another plan, --layers or --routing "
                         "than " +
                         plan);
}

} // namespace
