// End-to-end: runs the real `foldplan` binary and checks what users see — exit codes, one-line
// errors naming the field, and JSON that parses.
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/run_foldplan.hpp"

namespace {

using foldplan::testing_cli::CommandResult;
using foldplan::testing_cli::expect_input_error;
using foldplan::testing_cli::run_foldplan;

TEST(FoldplanCommand, GroupsJsonMatchesTheWorkedExample) {
  const CommandResult result =
      run_foldplan("groups --gpus 128 --tp 2 --pp 8 --ep 8 --etp 1 --rank 0 --json");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const nlohmann::json json = nlohmann::json::parse(result.output);
  EXPECT_EQ(json["attention"]["tp"], nlohmann::json::parse("[[0,1]]"));
  EXPECT_EQ(json["attention"]["dp"], nlohmann::json::parse("[[0,2,4,6,8,10,12,14]]"));
  EXPECT_EQ(json["attention"]["pp"], nlohmann::json::parse("[[0,16,32,48,64,80,96,112]]"));
  EXPECT_EQ(json["moe"]["ep"], nlohmann::json::parse("[[0,1,2,3,4,5,6,7]]"));
  EXPECT_EQ(json["moe"]["edp"], nlohmann::json::parse("[[0,8]]"));
  EXPECT_EQ(json["coordinates"]["moe"]["edp"], 0);
}

TEST(FoldplanCommand, GroupsJsonHoldsEveryGroup) {
  const CommandResult result = run_foldplan("groups --gpus 16 --tp 2 --cp 2 --pp 2 --ep 4 --json");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const nlohmann::json json = nlohmann::json::parse(result.output);
  EXPECT_EQ(json["attention"]["dp-cp"],
            nlohmann::json::parse("[[0,2,4,6],[1,3,5,7],[8,10,12,14],[9,11,13,15]]"));
  EXPECT_EQ(json["moe"]["ep"],
            nlohmann::json::parse("[[0,1,2,3],[4,5,6,7],[8,9,10,11],[12,13,14,15]]"));
}

TEST(FoldplanCommand, ModelsAndClustersListThePresets) {
  const CommandResult models = run_foldplan("models --json");
  ASSERT_EQ(models.exit_code, 0) << models.output;
  const nlohmann::json json = nlohmann::json::parse(models.output);
  EXPECT_EQ(json["models"].size(), 11u); // models/presets/*.json
  const CommandResult clusters = run_foldplan("clusters");
  EXPECT_EQ(clusters.exit_code, 0);
  EXPECT_NE(clusters.output.find("dgx-h100"), std::string::npos);
}

TEST(FoldplanCommand, TemplateIsAValidModelFile) {
  const CommandResult result = run_foldplan("models --template");
  ASSERT_EQ(result.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(result.output)["name"], "my-model");
}

TEST(FoldplanCommand, BadInputIsOneLineAndExitCodeTwo) {
  expect_input_error("groups --gpus 12 --tp 2",
                     "--gpus: 12 is not a multiple of gpus_per_node 8 of cluster dgx-h100 (use "
                     "whole nodes, or fewer than 8 GPUs for one partial node)");
  expect_input_error("groups --gpus 16 --tp 3",
                     "--tp: world size 16 is not divisible by TP·CP·PP = 3·1·1 = 3");
  expect_input_error("groups --gpus 16 --ep 16 --model mixtral-8x7b",
                     "parallel.ep: 16 does not divide num_experts 8");
  expect_input_error("groups --gpus 0", "--gpus: 0 is not a positive integer");
  expect_input_error("groups --gpus 16 --rank 16", "--rank: 16 is not below --gpus 16");
  expect_input_error("models mixtral8x22b",
                     "models NAME: unknown model 'mixtral8x22b'; did you mean 'mixtral-8x22b'?");
  expect_input_error("groups --gpus 8 --cluster dgx-h1000",
                     "--cluster: unknown cluster 'dgx-h1000'; did you mean 'dgx-h100'?");
  expect_input_error("models /nonexistent/model.json",
                     "/nonexistent/model.json: cannot open file: No such file or directory");
  EXPECT_EQ(run_foldplan("groups --gpus x").exit_code, 2);
  EXPECT_EQ(run_foldplan("no-such-command").exit_code, 2);
}

const char* kPaperPlan =
    "estimate --model mixtral-8x22b --cluster dgx-h100 --gpus 128 --seq 4096 --gbs 256 --mbs 1 "
    "--tp 2 --pp 8 --ep 8 --etp 1 --capacity-factor 1";

TEST(FoldplanCommand, EstimateJsonHasThePredictionKeys) {
  const CommandResult result = run_foldplan(std::string(kPaperPlan) + " --json");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const nlohmann::json json = nlohmann::json::parse(result.output);
  for (const char* key : {"step_time_s", "mfu", "tflops_per_gpu", "tokens_per_s_per_gpu",
                          "peak_memory_bytes", "fits", "breakdown", "memory"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_GT(json["mfu"].get<double>(), 0.3);
  EXPECT_LT(json["mfu"].get<double>(), 0.7);
  EXPECT_TRUE(json["fits"].get<bool>());
}

TEST(FoldplanCommand, EstimateWritesAPlanThatCarriesItsPrediction) {
  const std::string path = testing::TempDir() + "foldplan_estimate_plan.json";
  std::remove(path.c_str());
  const CommandResult result = run_foldplan(std::string(kPaperPlan) + " --json -o " + path);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::FILE* file = std::fopen(path.c_str(), "r");
  ASSERT_NE(file, nullptr);
  const nlohmann::json plan = nlohmann::json::parse(file);
  std::fclose(file);
  EXPECT_EQ(plan["schema"], "foldplan.plan/1");
  EXPECT_EQ(plan["parallel"]["edp"], 2);
  EXPECT_EQ(plan["prediction"], nlohmann::json::parse(result.output));
}

TEST(FoldplanCommand, EstimateRejectsBadInputWithOneLine) {
  expect_input_error("estimate --gpus 128 --tp 2 --pp 8 --ep 6",
                     "--ep: world size 128 is not divisible by ETP·EP·PP = 1·6·8 = 48");
  expect_input_error("estimate --gpus 128 --tp 2 --pp 8 --ep 16",
                     "parallel.ep: 16 does not divide num_experts 8");
  expect_input_error("estimate --gpus 128 --tp 2 --pp 8 --ep 8 --recompute some",
                     "--recompute: \"some\" is not one of none, selective, full");
  expect_input_error("estimate --gpus 128 --tp 2 --pp 8 --ep 8 --fp8 e5m2",
                     "--fp8: \"e5m2\" is not one of tensorwise, blockwise");
  expect_input_error("estimate --gpus 128 --tp 2 --pp 8 --ep 8 --pad-to-capacity",
                     "options.pad_to_capacity: true requires a capacity_factor");
  expect_input_error("estimate --gpus 128 --tp 2 --pp 8 --ep 8 -o /nonexistent-dir/plan.json",
                     "/nonexistent-dir/plan.json: cannot write output: No such file or directory");
}

TEST(FoldplanCommand, SimulateAgreesWithTheEstimateOnThePaperPlan) {
  const std::string path = testing::TempDir() + "foldplan_simulate_plan.json";
  ASSERT_EQ(run_foldplan(std::string(kPaperPlan) + " --json -o " + path).exit_code, 0);
  const CommandResult result = run_foldplan("simulate " + path + " --json");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const nlohmann::json json = nlohmann::json::parse(result.output);
  for (const char* key :
       {"step_time_s", "mfu", "bubble_fraction", "dropped_token_fraction", "peak_memory_bytes"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  const double simulated = json["step_time_s"].get<double>();
  EXPECT_NEAR(json["analytic_step_time_s"].get<double>() / simulated, 1.0, 0.10);
  EXPECT_EQ(json["dropped_token_fraction"].get<double>(), 0.0); // balanced routing, cf 1
  expect_input_error("simulate " + path + " --routing zipf:-1",
                     "--routing: \"zipf:-1\": \"-1\" is not a positive number");
  expect_input_error("simulate /nonexistent/plan.json",
                     "/nonexistent/plan.json: cannot open file: No such file or directory");
}

TEST(FoldplanCommand, TraceWritesAChromeTraceOfEveryStage) {
  const std::string plan = testing::TempDir() + "foldplan_trace_plan.json";
  const std::string trace = testing::TempDir() + "foldplan_trace.json";
  ASSERT_EQ(run_foldplan("estimate --model mixtral-8x7b --gpus 16 --tp 2 --pp 2 --ep 4 --etp 1 "
                         "--gbs 16 -o " +
                         plan)
                .exit_code,
            0);
  const CommandResult result = run_foldplan("trace " + plan + " -o " + trace);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::FILE* file = std::fopen(trace.c_str(), "r");
  ASSERT_NE(file, nullptr);
  const nlohmann::json json = nlohmann::json::parse(file);
  std::fclose(file);
  std::set<std::int64_t> processes;
  int complete_events = 0;
  for (const nlohmann::json& event : json["traceEvents"]) {
    processes.insert(event["pid"].get<std::int64_t>());
    if (event["ph"] == "X") {
      ++complete_events;
      EXPECT_GE(event["dur"].get<double>(), 0.0);
    }
  }
  EXPECT_EQ(processes, (std::set<std::int64_t>{0, 8})); // the first rank of each stage
  EXPECT_GT(complete_events, 1000);
  expect_input_error("trace " + plan + " -o " + trace + " --ranks 16",
                     "--ranks: 16 is not a rank of the plan's 16 GPUs");
}

TEST(FoldplanCommand, SearchJsonRanksPlansAndCountsRejections) {
  const std::string plan_path = testing::TempDir() + "/search_best.json";
  const CommandResult result =
      run_foldplan("search --model mixtral-8x7b --gpus 16 --gbs 64 --mbs 1 --recompute none "
                   "--top 3 --simulate-top 1 --json -o " +
                   plan_path);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const nlohmann::json json = nlohmann::json::parse(result.output);
  ASSERT_EQ(json["plans"].size(), 3u);
  EXPECT_GT(json["evaluated"].get<int>(), json["timed"].get<int>());
  std::int64_t rejected = 0;
  for (const auto& [reason, count] : json["rejected"].items())
    rejected += count.get<std::int64_t>();
  EXPECT_EQ(json["timed"].get<std::int64_t>() + rejected, json["evaluated"].get<std::int64_t>());
  EXPECT_GE(json["elapsed_s"].get<double>(), 0.0);
  EXPECT_TRUE(json["ranking"][0].contains("simulated_step_time_s"));
  EXPECT_FALSE(json["ranking"][1].contains("simulated_step_time_s"));
  for (const nlohmann::json& plan : json["plans"]) {
    EXPECT_EQ(plan["training"]["micro_batch_size"], 1);
    EXPECT_EQ(plan["options"]["recompute"], "none");
  }
  // -o wrote the best plan, which the other commands read.
  const CommandResult simulated = run_foldplan("simulate " + plan_path + " --json");
  ASSERT_EQ(simulated.exit_code, 0) << simulated.output;
  EXPECT_NEAR(nlohmann::json::parse(simulated.output)["step_time_s"].get<double>(),
              json["ranking"][0]["simulated_step_time_s"].get<double>(), 1e-9);
}

TEST(FoldplanCommand, SearchTableExplainsTheBestAndComparesFolding) {
  const CommandResult result =
      run_foldplan("search --model mixtral-8x7b --gpus 16 --gbs 64 --mbs 1 --top 3 "
                   "--simulate-top 0 --compare-folding");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("MoE Parallel Folding"), std::string::npos);
  EXPECT_NE(result.output.find("no folding (ETP = TP, EP in DP)"), std::string::npos);
  EXPECT_NE(result.output.find("why the best win:"), std::string::npos);
  EXPECT_NE(result.output.find("rejected points by reason:"), std::string::npos);
  EXPECT_NE(result.output.find("folding vs no folding (bests):"), std::string::npos);
}

TEST(FoldplanCommand, SearchRejectsBadInputWithOneLine) {
  expect_input_error("search --tp 0", "--tp: 0 is not a positive integer");
  expect_input_error("search --capacity 1.x",
                     "--capacity: \"1.x\" is not \"dropless\", a positive capacity factor or a "
                     "factor with \":pad\" (1.25:pad)");
  expect_input_error("search --recompute most",
                     "--recompute: \"most\" is not one of none, selective, full");
  expect_input_error("search --model mixtral8x22b",
                     "--model: unknown model 'mixtral8x22b'; did you mean "
                     "'mixtral-8x22b'?");
  expect_input_error("search --gpus 8 --top 0", "top: 0 is not a positive number of plans");
  expect_input_error(
      "search --gpus 12",
      "--gpus: 12 is not a multiple of gpus_per_node 8 of cluster dgx-h100 (use whole "
      "nodes, or fewer than 8 GPUs for one partial node)");
  expect_input_error("search --no-folding --compare-folding",
                     "--compare-folding: searches both spaces; drop --no-folding");
}

TEST(FoldplanCommand, SearchWithNothingValidSaysWhyAndFails) {
  // 8 GPUs cannot hold Mixtral-8x22B's 141B parameters and their optimizer state in 80 GB each.
  const CommandResult result = run_foldplan("search --gpus 8 --simulate-top 0");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("no plan is valid and fits"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("does not fit in memory"), std::string::npos);
}

TEST(FoldplanCommand, ExplainShowsLayersStagesGroupsAndAlternatives) {
  const std::string plan_path = testing::TempDir() + "/explain_plan.json";
  ASSERT_EQ(
      run_foldplan("estimate --tp 2 --pp 8 --ep 8 --etp 1 --capacity-factor 1 -o " + plan_path)
          .exit_code,
      0);
  const CommandResult text = run_foldplan("explain " + plan_path);
  ASSERT_EQ(text.exit_code, 0) << text.output;
  for (const char* section : {"moe x56 forward", "(* paces the pipeline)", "NVLink", "InfiniBand",
                              "memory of stage", "the best plans of the same space"}) {
    EXPECT_NE(text.output.find(section), std::string::npos) << section;
  }
  const CommandResult json = run_foldplan("explain " + plan_path + " --json --alternatives 2");
  ASSERT_EQ(json.exit_code, 0) << json.output;
  const nlohmann::json parsed = nlohmann::json::parse(json.output);
  EXPECT_EQ(parsed["alternatives"].size(), 2u);
  EXPECT_EQ(parsed["stages"].size(), 8u);
  expect_input_error("explain " + plan_path + " --alternatives -1",
                     "--alternatives: -1 is negative (0 leaves them out)");
}

TEST(FoldplanCommand, NoArgumentsShowsTheGuide) {
  const CommandResult result = run_foldplan("");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_NE(result.output.find("Everyday commands"), std::string::npos);
  EXPECT_EQ(run_foldplan("--version").output, "0.1.0\n");
}

} // namespace
