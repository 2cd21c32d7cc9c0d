// End-to-end: `foldplan report` from search flags and from a plan file, its --json summary, the
// --validation file's errors; the guide, did-you-mean for flags and commands, the templates that
// load back, and `trace --json`.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/run_foldplan.hpp"

namespace {

namespace fs = std::filesystem;
using foldplan::testing_cli::CommandResult;
using foldplan::testing_cli::expect_input_error;
using foldplan::testing_cli::run_foldplan;

std::string read(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

fs::path scratch(const std::string& name) {
  const fs::path directory = fs::path(::testing::TempDir()) / "foldplan_report_cli";
  fs::create_directories(directory);
  fs::remove(directory / name);
  return directory / name;
}

constexpr const char* kSmallSearch =
    "--model mixtral-8x7b --cluster dgx-h100 --gpus 16 --seq 4096 --gbs 32";

TEST(ReportCommand, FromSearchFlagsWritesOnePageWithEverySection) {
  const fs::path html = scratch("search.html");
  const fs::path validation = scratch("validation.json");
  std::ofstream(validation) << R"({"step": {"predicted_s": 2.0, "measured_s": 2.5}})";
  const CommandResult result =
      run_foldplan(std::string("report ") + kSmallSearch + " --routing zipf:1.1 --validation " +
                   validation.string() + " --json -o " + html.string());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const nlohmann::json json = nlohmann::json::parse(result.output);
  EXPECT_EQ(json["sections"], nlohmann::json::parse(R"(["search-space", "folding",
      "cost-breakdown", "memory", "timeline", "moe-traffic", "validation"])"));
  EXPECT_EQ(json["output"], html.string());
  const std::string page = read(html);
  EXPECT_EQ(json["bytes"], page.size());
  EXPECT_GT(json["simulated_step_time_s"].get<double>(), 0);
  EXPECT_EQ(json["plan"]["model"]["name"], "mixtral-8x7b");
  EXPECT_NE(page.find("+25.0%"), std::string::npos); // measured 2.5 s against 2.0 s predicted
  EXPECT_EQ(page.find("://"), std::string::npos);
}

TEST(ReportCommand, FromAPlanFileMarksThatPlan) {
  const fs::path plan = scratch("plan.json");
  const CommandResult estimate = run_foldplan(
      "estimate --model mixtral-8x7b --gpus 16 --seq 4096 --gbs 32 --tp 2 --pp 2 --ep 8 -o " +
      plan.string());
  ASSERT_EQ(estimate.exit_code, 0) << estimate.output;
  const fs::path html = scratch("plan.html");
  const CommandResult result = run_foldplan("report " + plan.string() + " -o " + html.string());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("wrote " + html.string()), std::string::npos);
  const std::string page = read(html);
  EXPECT_NE(page.find("plan file " + plan.string() + ": TP2 CP1 PP2"), std::string::npos);
  EXPECT_NE(page.find("<section id=\"search-space\">"), std::string::npos);
}

TEST(ReportCommand, BadInputNamesTheField) {
  const fs::path validation = scratch("bad_validation.json");
  std::ofstream(validation) << R"({"step": {"predicted_s": 1}})";
  expect_input_error(std::string("report ") + kSmallSearch + " --validation " +
                         validation.string() + " -o " + scratch("x.html").string(),
                     "--validation " + validation.string() + ".step.measured_s: is missing");
  expect_input_error("report plan.json --gpus 64 -o x.html",
                     "--gpus: not used with a plan file, which fixes the model, cluster, batch and "
                     "options");
  expect_input_error(std::string("report ") + kSmallSearch + " --routing zipf:-1 -o " +
                         scratch("x.html").string(),
                     R"(--routing: "zipf:-1": "-1" is not a positive number)");
}

TEST(Guide, NoArgumentsAndHelpShowTheEverydayCommandsWithExamples) {
  const CommandResult bare = run_foldplan("");
  ASSERT_EQ(bare.exit_code, 0);
  const CommandResult help = run_foldplan("--help");
  ASSERT_EQ(help.exit_code, 0);
  for (const CommandResult* result : {&bare, &help}) {
    for (const char* example :
         {"foldplan search --model", "foldplan explain plan.json", "foldplan export plan.json",
          "foldplan report --model", "foldplan simulate plan.json"})
      EXPECT_NE(result->output.find(example), std::string::npos) << example;
  }
}

TEST(DidYouMean, UnknownFlagsAndCommandsSuggestTheClosest) {
  expect_input_error("search --gpu 8", "The following arguments were not expected: 8 --gpu; did "
                                       "you mean '--gpus'?");
  // (report takes the value as its plan file argument.)
  expect_input_error("report --modle mixtral-8x7b -o x.html",
                     "The following argument was not expected: --modle; did you mean '--model'?");
  expect_input_error("serch", "The following argument was not expected: serch; did you mean "
                              "'search'?");
  expect_input_error("search --zzzzzz", "The following argument was not expected: --zzzzzz");
}

TEST(Templates, ModelAndClusterTemplatesLoadBackAsPaths) {
  const CommandResult model = run_foldplan("models --template");
  ASSERT_EQ(model.exit_code, 0);
  const nlohmann::json model_json = nlohmann::json::parse(model.output);
  // Every field has its comment, keyed by the field's name.
  for (const auto& [key, value] : model_json.items()) {
    if (key != "_comments") {
      EXPECT_TRUE(model_json["_comments"].contains(key)) << key;
    }
  }
  for (const auto& [key, value] : model_json["moe"].items())
    EXPECT_TRUE(model_json["_comments"].contains("moe." + key)) << key;
  const fs::path model_path = scratch("my-model.json");
  std::ofstream(model_path) << model.output;

  const CommandResult cluster = run_foldplan("clusters --template");
  ASSERT_EQ(cluster.exit_code, 0);
  const nlohmann::json cluster_json = nlohmann::json::parse(cluster.output);
  for (const auto& [key, value] : cluster_json["gpu"].items())
    EXPECT_TRUE(cluster_json["_comments"].contains("gpu." + key)) << key;
  const fs::path cluster_path = scratch("my-cluster.json");
  std::ofstream(cluster_path) << cluster.output;

  const CommandResult shown = run_foldplan("models " + model_path.string() + " --json");
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_EQ(nlohmann::json::parse(shown.output)["models"][0]["name"], "my-model");
  const CommandResult searched =
      run_foldplan("search --model " + model_path.string() + " --cluster " + cluster_path.string() +
                   " --gpus 16 --gbs 32 --json --simulate-top 0");
  ASSERT_EQ(searched.exit_code, 0) << searched.output;
  EXPECT_EQ(nlohmann::json::parse(searched.output)["plans"][0]["cluster"]["name"], "my-cluster");
}

TEST(TraceCommand, JsonSaysWhatWasWritten) {
  const fs::path plan = scratch("trace_plan.json");
  ASSERT_EQ(run_foldplan("estimate --model mixtral-8x7b --gpus 16 --seq 4096 --gbs 32 --tp 2 "
                         "--pp 2 --ep 8 -o " +
                         plan.string())
                .exit_code,
            0);
  const fs::path trace = scratch("trace.json");
  const CommandResult result =
      run_foldplan("trace " + plan.string() + " -o " + trace.string() + " --json");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const nlohmann::json json = nlohmann::json::parse(result.output);
  EXPECT_EQ(json["output"], trace.string());
  EXPECT_EQ(json["ranks"], nlohmann::json::parse("[0, 8]")); // the first rank of each stage
  EXPECT_GT(json["step_time_s"].get<double>(), 0);
  EXPECT_TRUE(fs::exists(trace));
}

} // namespace
