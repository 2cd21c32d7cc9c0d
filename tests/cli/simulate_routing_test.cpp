// End-to-end: --routing reaches the event simulation. Under skew every EP rank gets its own
// program and the step grows; balanced routing keeps one program per stage; the trace of a skewed
// step shows each stage's straggler beside its first rank.
#include <cstdio>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/run_foldplan.hpp"

namespace {

using foldplan::testing_cli::CommandResult;
using foldplan::testing_cli::run_foldplan;

// Mixtral-8x7B on 32 GPUs, TP2 PP2 EP4 (EDP 4), dropless, 8 micro-batches.
std::string mixtral_plan(const std::string& name) {
  return foldplan::testing_cli::write_estimated_plan(
      name, "--model mixtral-8x7b --cluster dgx-h100 --gpus 32 --seq 4096 --gbs 64 --mbs 1 --tp 2 "
            "--pp 2 --ep 4");
}

nlohmann::json simulate_json(const std::string& arguments) {
  return foldplan::testing_cli::run_json("simulate " + arguments);
}

TEST(SimulateRouting, SkewGivesEveryEpRankItsProgramAndAStragglerPacedStep) {
  const std::string plan = mixtral_plan("simulate_routing_plan.json");
  const nlohmann::json balanced = simulate_json(plan);
  EXPECT_FALSE(balanced["routed_experts"].get<bool>());
  EXPECT_EQ(balanced["programs"], 2); // one per stage
  EXPECT_EQ(balanced["routing"], "balanced");
  const nlohmann::json skewed = simulate_json(plan + " --routing zipf:1.5");
  EXPECT_TRUE(skewed["routed_experts"].get<bool>());
  EXPECT_EQ(skewed["programs"], 2 * 4); // one per stage and EP rank
  EXPECT_GT(skewed["step_time_s"].get<double>(), balanced["step_time_s"].get<double>());
  EXPECT_GT(skewed["expert_load_factor"].get<double>(), 1.0);
  const nlohmann::json& spread = skewed["critical_stage_compute_spread_s"];
  EXPECT_GT(spread["most"].get<double>(), spread["least"].get<double>());
}

TEST(SimulateRouting, TheTraceOfASkewedStepShowsEachStagesStraggler) {
  const std::string plan = mixtral_plan("simulate_routing_trace_plan.json");
  const std::string trace = testing::TempDir() + "simulate_routing_trace.json";
  std::remove(trace.c_str());
  const CommandResult result =
      run_foldplan("trace " + plan + " -o " + trace + " --routing zipf:1.5");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::FILE* file = std::fopen(trace.c_str(), "r");
  ASSERT_NE(file, nullptr);
  const nlohmann::json json = nlohmann::json::parse(file);
  std::fclose(file);
  // Each stage's first rank (0 and 16), and the busiest rank of a stage where that is another.
  std::set<std::int64_t> ranks;
  for (const nlohmann::json& event : json["traceEvents"])
    ranks.insert(event["pid"].get<std::int64_t>());
  EXPECT_TRUE(ranks.contains(0));
  EXPECT_TRUE(ranks.contains(16));
  EXPECT_GT(ranks.size(), 2u);
  EXPECT_LE(ranks.size(), 4u);
  EXPECT_NE(result.output.find(std::to_string(ranks.size()) + " ranks"), std::string::npos)
      << result.output;
}

TEST(SimulateRouting, ABadHistogramIsOneLine) {
  const std::string plan = mixtral_plan("simulate_routing_bad_plan.json");
  const std::string histogram = testing::TempDir() + "simulate_routing_three_experts.json";
  std::FILE* file = std::fopen(histogram.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fputs("{\"expert_share\": [1, 2, 3]}\n", file);
  std::fclose(file);
  foldplan::testing_cli::expect_input_error("simulate " + plan + " --routing " + histogram,
                                            "--routing: \"" + histogram +
                                                "\" has 3 expert shares, the model has 8 experts");
}

} // namespace
