// End-to-end: `foldplan export` on plans written by `foldplan estimate -o` — the script matches the
// golden file, --json and -o carry the same command, and bad input is one line with exit code 2.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/run_foldplan.hpp"

namespace {

using foldplan::testing_cli::CommandResult;
using foldplan::testing_cli::expect_input_error;
using foldplan::testing_cli::run_foldplan;

// The paper's folded Mixtral 8x22B plan, as tests/data/megatron/mixtral-8x22b-folded.txt holds it.
const char* kPaperPlan =
    "estimate --model mixtral-8x22b --cluster dgx-h100 --gpus 128 --seq 4096 --gbs 256 --mbs 1 "
    "--tp 2 --pp 8 --ep 8 --etp 1 --capacity-factor 1";

std::string read_file(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// Writes the paper plan (with its prediction) once per test and returns its path.
std::string paper_plan_file(const std::string& name) {
  const std::string path = testing::TempDir() + name;
  std::remove(path.c_str());
  const CommandResult result = run_foldplan(std::string(kPaperPlan) + " --json -o " + path);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return path;
}

// The script without the line that carries the prediction (the golden plan has none).
std::string without_prediction(const std::string& script) {
  std::istringstream lines(script);
  std::string kept;
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("# foldplan predicts"))
      kept += line + "\n";
  }
  return kept;
}

TEST(ExportCommand, ScriptMatchesTheGoldenFileAndShowsThePrediction) {
  const std::string plan = paper_plan_file("foldplan_export_plan.json");
  const CommandResult result = run_foldplan("export " + plan + " --format megatron");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("# foldplan predicts a step of "), std::string::npos);
  EXPECT_EQ(without_prediction(result.output),
            read_file(std::string(FOLDPLAN_TEST_DATA_DIR) + "/megatron/mixtral-8x22b-folded.txt"));
  // megatron is the default format.
  EXPECT_EQ(run_foldplan("export " + plan).output, result.output);
}

TEST(ExportCommand, JsonHoldsTheArgumentsAndTheEnvironment) {
  const std::string plan = paper_plan_file("foldplan_export_json_plan.json");
  const CommandResult result = run_foldplan("export " + plan + " --json");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const nlohmann::json json = nlohmann::json::parse(result.output);
  EXPECT_EQ(json["environment"], nlohmann::json::parse(R"({"CUDA_DEVICE_MAX_CONNECTIONS": "1"})"));
  const std::vector<std::string> arguments = json["arguments"].get<std::vector<std::string>>();
  const auto value_after = [&](const std::string& flag) -> std::string {
    for (std::size_t i = 0; i + 1 < arguments.size(); ++i) {
      if (arguments[i] == flag)
        return arguments[i + 1];
    }
    return "<missing>";
  };
  EXPECT_EQ(value_after("--tensor-model-parallel-size"), "2");
  EXPECT_EQ(value_after("--pipeline-model-parallel-size"), "8");
  EXPECT_EQ(value_after("--expert-model-parallel-size"), "8");
  EXPECT_EQ(value_after("--expert-tensor-parallel-size"), "1");
  EXPECT_EQ(value_after("--moe-expert-capacity-factor"), "1.0");
  EXPECT_EQ(value_after("--global-batch-size"), "256");
}

TEST(ExportCommand, OutputFileHoldsWhatStandardOutputWouldShow) {
  const std::string plan = paper_plan_file("foldplan_export_output_plan.json");
  const std::string script = testing::TempDir() + "foldplan_export_run.sh";
  std::remove(script.c_str());
  const CommandResult written = run_foldplan("export " + plan + " -o " + script);
  ASSERT_EQ(written.exit_code, 0) << written.output;
  EXPECT_EQ(written.output,
            "wrote " + script + ": Megatron-LM launch script for mixtral-8x22b on 128 GPUs\n");
  EXPECT_EQ(read_file(script), run_foldplan("export " + plan).output);

  const std::string json = testing::TempDir() + "foldplan_export_run.json";
  ASSERT_EQ(run_foldplan("export " + plan + " --json -o " + json).exit_code, 0);
  EXPECT_EQ(read_file(json), run_foldplan("export " + plan + " --json").output);
}

TEST(ExportCommand, BadInputIsOneLineAndExitCodeTwo) {
  const std::string plan = paper_plan_file("foldplan_export_bad_plan.json");
  expect_input_error("export " + plan + " --format deepspeed",
                     "--format: \"deepspeed\" is not one of megatron");
  expect_input_error("export /nonexistent/plan.json",
                     "/nonexistent/plan.json: cannot open file: No such file or directory");
  expect_input_error("export " + plan + " -o /nonexistent-dir/run.sh",
                     "/nonexistent-dir/run.sh: cannot write output: No such file or directory");

  const std::string malformed = testing::TempDir() + "foldplan_export_malformed.json";
  write_file(malformed, "{\"schema\": \"foldplan.plan/1\",");
  const CommandResult truncated = run_foldplan("export " + malformed);
  EXPECT_EQ(truncated.exit_code, 2) << truncated.output;
  EXPECT_TRUE(truncated.output.starts_with("foldplan: error: " + malformed + ": "))
      << truncated.output;
  EXPECT_EQ(std::count(truncated.output.begin(), truncated.output.end(), '\n'), 1)
      << truncated.output;

  // A plan edited into one Megatron rejects: the EP overlap with PP8 and no virtual stages.
  nlohmann::json edited = nlohmann::json::parse(read_file(plan));
  edited["options"]["overlap_moe_expert_parallel_comm"] = true;
  const std::string overlap = testing::TempDir() + "foldplan_export_overlap.json";
  write_file(overlap, edited.dump(2));
  expect_input_error("export " + overlap,
                     "options.overlap_moe_expert_parallel_comm: true with pp 8 requires vpp > 1");

  edited = nlohmann::json::parse(read_file(plan));
  edited["gpus"] = -8;
  const std::string negative = testing::TempDir() + "foldplan_export_negative.json";
  write_file(negative, edited.dump(2));
  expect_input_error("export " + negative, "plan.gpus: -8 is not a positive integer");

  EXPECT_EQ(run_foldplan("export").exit_code, 2); // PLAN is required
}

} // namespace
