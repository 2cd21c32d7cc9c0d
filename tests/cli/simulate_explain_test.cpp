// End-to-end: `foldplan simulate` puts the event simulation beside the analytic estimate — both
// step times, every cost term's difference, and a one-line reason wherever a difference is large —
// in the text it prints and in --json as "estimate_comparison".
#include <cmath>
#include <cstdio>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/run_foldplan.hpp"

namespace {

using foldplan::testing_cli::CommandResult;
using foldplan::testing_cli::run_foldplan;

// Mixtral-8x7B on 32 GPUs, TP2 PP4 EP4, 16 micro-batches: written once per test as a plan file.
std::string mixtral_plan(const std::string& name) {
  return foldplan::testing_cli::write_estimated_plan(
      name, "--model mixtral-8x7b --cluster dgx-h100 --gpus 32 --seq 4096 --gbs 64 --mbs 1 --tp 2 "
            "--pp 4 --ep 4");
}

nlohmann::json simulate_json(const std::string& arguments) {
  return foldplan::testing_cli::run_json("simulate " + arguments);
}

TEST(SimulateExplain, JsonComparesEveryCostTermWithTheEstimate) {
  const std::string plan = mixtral_plan("simulate_explain_plan.json");
  for (const char* routing : {"balanced", "zipf:2"}) {
    SCOPED_TRACE(routing);
    const nlohmann::json json = simulate_json(plan + " --routing " + routing);
    ASSERT_TRUE(json.contains("estimate_comparison"));
    const nlohmann::json& comparison = json["estimate_comparison"];
    const double step = json["step_time_s"].get<double>();
    EXPECT_DOUBLE_EQ(comparison["simulated_step_time_s"].get<double>(), step);
    EXPECT_DOUBLE_EQ(comparison["estimated_step_time_s"].get<double>(),
                     json["analytic_step_time_s"].get<double>());
    std::set<std::string> names;
    double simulated_sum = 0;
    const double notable = comparison["notable_difference_share"].get<double>() * step;
    for (const nlohmann::json& term : comparison["terms"]) {
      names.insert(term["term"].get<std::string>());
      simulated_sum += term["simulated_s"].get<double>();
      const double difference = term["difference_s"].get<double>();
      EXPECT_DOUBLE_EQ(difference,
                       term["simulated_s"].get<double>() - term["estimated_s"].get<double>());
      // A reason exactly where the difference is large.
      EXPECT_EQ(term.contains("reason"), std::fabs(difference) >= notable) << term.dump();
    }
    EXPECT_EQ(names, (std::set<std::string>{"compute", "bubble", "tp_comm", "cp_comm", "ep_comm",
                                            "pp_comm", "host_sync", "dp_comm_and_optimizer"}));
    EXPECT_NEAR(simulated_sum, step, 1e-9 * step);
  }
}

TEST(SimulateExplain, TextPrintsBothStepTimesAndWhyTheyDiffer) {
  const std::string plan = mixtral_plan("simulate_explain_text_plan.json");
  const CommandResult result = run_foldplan("simulate " + plan + " --routing zipf:2");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::string& text = result.output;
  EXPECT_NE(text.find("simulated step"), std::string::npos) << text;
  EXPECT_NE(text.find("analytic estimate"), std::string::npos) << text;
  EXPECT_NE(text.find("beside the estimate: rank "), std::string::npos) << text;
  for (const char* term : {"compute", "bubble", "ep_comm", "dp_comm_and_optimizer"})
    EXPECT_NE(text.find(std::string("\n") + term + " "), std::string::npos) << term;
  // Skew this strong makes the compute differ by far more than 2% of the step, and says why.
  EXPECT_NE(text.find("where they differ by 2% of the step or more:"), std::string::npos) << text;
  EXPECT_NE(text.find("  compute: simulation "), std::string::npos) << text;
  EXPECT_NE(text.find(" vs estimate "), std::string::npos) << text;
  EXPECT_NE(text.find("busiest expert rank's load"), std::string::npos) << text;
}

} // namespace
