// The simulation beside the analytic estimate, term by term: both sides sum to their step times,
// the lowering reproduces the estimate's compute under balanced routing, and every notable
// difference — and only a notable one — comes with its reason.
#include "simulator/estimate_comparison.hpp"

#include <cmath>
#include <numeric>

#include <gtest/gtest.h>

#include "costmodel/cost_context.hpp"
#include "simulator/lowering.hpp"
#include "simulator/op_timer.hpp"
#include "simulator/routed_lowering.hpp"
#include "tests/simulator/test_plans.hpp"
#include "topologies/cluster_spec.hpp"

namespace foldplan {
namespace {

Plan mixtral_pp4() {
  return testing_plans::make_plan("mixtral-8x7b", 32, {.tp = 2, .pp = 4, .ep = 4}, 64);
}

EstimateComparison compare(const Plan& plan, const std::string& routing_text) {
  const RoutedStep routed = lower_routed_plan(plan, parse_routing_spec(routing_text));
  const CostContext context(plan.cluster, plan.gpus);
  const CostModelOpTimer cost_model(context, routed.program);
  const OpTimer timer = [&](const Op& op, std::int64_t rank) { return cost_model(op, rank); };
  const SimulationResult simulated = simulate_step(routed.program, timer);
  const double load_factor = routed.dispatch ? routed.dispatch->max_load_factor : 1.0;
  const StepEstimate estimate = estimate_step(context, plan, load_factor);
  return compare_with_estimate({.plan = plan,
                                .program = routed.program,
                                .simulated = simulated,
                                .timer = timer,
                                .estimate = estimate,
                                .routed_experts = routed.routed_experts,
                                .expert_load_factor = load_factor});
}

const TermComparison& term_named(const EstimateComparison& comparison, const std::string& name) {
  for (const TermComparison& term : comparison.terms)
    if (term.term == name)
      return term;
  ADD_FAILURE() << "no term " << name;
  return comparison.terms.front();
}

TEST(EstimateComparison, BothSidesSumToTheirStepTimes) {
  for (const char* routing : {"balanced", "zipf:1.2"}) {
    SCOPED_TRACE(routing);
    const EstimateComparison comparison = compare(mixtral_pp4(), routing);
    double simulated = 0, estimated = 0;
    for (const TermComparison& term : comparison.terms) {
      simulated += term.simulated_s;
      estimated += term.estimated_s;
    }
    EXPECT_NEAR(simulated, comparison.simulated_step_s, 1e-9 * comparison.simulated_step_s);
    EXPECT_NEAR(estimated, comparison.estimated_step_s, 1e-9 * comparison.estimated_step_s);
  }
}

TEST(EstimateComparison, BalancedLoweringReproducesTheEstimatesCompute) {
  const EstimateComparison comparison = compare(mixtral_pp4(), "balanced");
  const TermComparison& compute = term_named(comparison, "compute");
  // Same shapes, same cost model: the critical stage's compute agrees to rounding.
  EXPECT_NEAR(compute.simulated_s, compute.estimated_s, 1e-9 * compute.estimated_s);
  EXPECT_TRUE(compute.reason.empty());
  EXPECT_EQ(comparison.estimated_critical_stage, 3); // the last stage carries the output layer
  EXPECT_EQ(comparison.compared_rank / 8, 3);
}

TEST(EstimateComparison, EveryNotableDifferenceAndOnlyThoseHasAReason) {
  for (const char* routing : {"balanced", "zipf:1.5"}) {
    SCOPED_TRACE(routing);
    const EstimateComparison comparison = compare(mixtral_pp4(), routing);
    for (const TermComparison& term : comparison.terms) {
      const bool notable =
          std::fabs(term.difference_s()) >= kNotableDifferenceShare * comparison.simulated_step_s;
      EXPECT_EQ(notable, !term.reason.empty()) << term.term;
    }
  }
}

TEST(EstimateComparison, SkewedRoutingIsNamedAsTheReason) {
  const EstimateComparison comparison = compare(mixtral_pp4(), "zipf:2");
  const TermComparison& compute = term_named(comparison, "compute");
  ASSERT_FALSE(compute.reason.empty());
  EXPECT_NE(compute.reason.find("busiest expert rank's load"), std::string::npos) << compute.reason;
  const TermComparison& bubble = term_named(comparison, "bubble");
  ASSERT_FALSE(bubble.reason.empty());
  EXPECT_NE(bubble.reason.find("slowest EP rank"), std::string::npos) << bubble.reason;
}

TEST(EstimateComparison, UnequalStagesAreNamedAsTheReasonForTheBubble) {
  // A clock under which the last stage's work takes 1.5 times as long, against an estimate with
  // almost no bubble: the simulated bubble is larger, and the heavy stage is named.
  const Plan plan = mixtral_pp4();
  const StepProgram program = lower_plan(plan);
  const OpTimer timer = [](const Op& op, std::int64_t rank) {
    if (op.stream != Stream::compute)
      return 0.0;
    return rank >= 24 ? 1.5e-3 : 1e-3;
  };
  const SimulationResult simulated = simulate_step(program, timer);
  StepEstimate estimate;
  estimate.critical_stage = 3;
  estimate.prediction.breakdown = {{"compute", 0.5 * simulated.step_time_s},
                                   {"bubble", 0.01 * simulated.step_time_s}};
  estimate.bubble_s = 0.01 * simulated.step_time_s;
  estimate.prediction.step_time_s = 0.51 * simulated.step_time_s;
  const EstimateComparison comparison = compare_with_estimate({.plan = plan,
                                                               .program = program,
                                                               .simulated = simulated,
                                                               .timer = timer,
                                                               .estimate = estimate,
                                                               .routed_experts = false,
                                                               .expert_load_factor = 1.0});
  const TermComparison& bubble = term_named(comparison, "bubble");
  EXPECT_GT(bubble.difference_s(), 0);
  EXPECT_NE(bubble.reason.find("stage 3 carries the output layer"), std::string::npos)
      << bubble.reason;
  EXPECT_NE(bubble.reason.find("than stage"), std::string::npos) << bubble.reason;
}

TEST(EstimateComparison, JsonCarriesEveryTerm) {
  const EstimateComparison comparison = compare(mixtral_pp4(), "balanced");
  const nlohmann::json json = estimate_comparison_to_json(comparison);
  EXPECT_DOUBLE_EQ(json.at("simulated_step_time_s").get<double>(), comparison.simulated_step_s);
  EXPECT_DOUBLE_EQ(json.at("estimated_step_time_s").get<double>(), comparison.estimated_step_s);
  ASSERT_EQ(json.at("terms").size(), comparison.terms.size());
  for (std::size_t i = 0; i < comparison.terms.size(); ++i) {
    const nlohmann::json& term = json.at("terms")[i];
    EXPECT_EQ(term.at("term"), comparison.terms[i].term);
    EXPECT_DOUBLE_EQ(term.at("difference_s").get<double>(), comparison.terms[i].difference_s());
    EXPECT_EQ(term.contains("reason"), !comparison.terms[i].reason.empty());
  }
}

} // namespace
} // namespace foldplan
