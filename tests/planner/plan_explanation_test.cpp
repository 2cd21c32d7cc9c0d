#include "planner/plan_explanation.hpp"

#include <gtest/gtest.h>

namespace foldplan {
namespace {

Plan paper_plan(bool folding) {
  Plan plan;
  plan.model = load_model("mixtral-8x22b");
  plan.cluster = load_cluster("dgx-h100");
  plan.gpus = 128;
  plan.training = {.seq_length = 4096, .global_batch_size = 256, .micro_batch_size = 1};
  plan.parallel = make_parallel_config(128,
                                       folding ? ParallelSizes{.tp = 2, .pp = 8, .ep = 8, .etp = 1}
                                               : ParallelSizes{.tp = 2, .pp = 8, .ep = 4},
                                       folding);
  plan.options.folding = folding;
  plan.options.capacity_factor = 1.0;
  validate_plan(plan);
  return plan;
}

const GroupExplanation& group_named(const PlanExplanation& explanation, const std::string& name) {
  for (const GroupExplanation& group : explanation.groups) {
    if (group.name == name)
      return group;
  }
  throw std::invalid_argument(name);
}

TEST(PlanExplanation, FoldingKeepsExpertParallelismOnNvlink) {
  const Plan folded = paper_plan(true);
  const CostContext context(folded.cluster, folded.gpus);
  const PlanExplanation explanation = explain_plan(folded, context, 0);
  // EP8 with ETP1 sits on the 8 GPUs of one node; the 8 pipeline stages are 8 nodes apart.
  EXPECT_EQ(group_named(explanation, "ep").ranks, 8);
  EXPECT_EQ(group_named(explanation, "ep").links, "NVLink");
  EXPECT_EQ(group_named(explanation, "pp").nodes, 8);
  EXPECT_EQ(group_named(explanation, "pp").links, "InfiniBand");
  EXPECT_EQ(group_named(explanation, "ep").step_s,
            explanation.estimate.prediction.breakdown.at("ep_comm"));
  // Without folding, EP4 strides over TP2: EP·TP = 8 ranks, still one node, but ETP2 remains.
  const Plan unfolded = paper_plan(false);
  const PlanExplanation plain = explain_plan(unfolded, context, 0);
  EXPECT_EQ(group_named(plain, "etp").ranks, 2);
  EXPECT_GT(group_named(plain, "etp").step_s, 0);
}

TEST(PlanExplanation, LayersAndStagesAddUpToTheEstimate) {
  const Plan plan = paper_plan(true);
  const CostContext context(plan.cluster, plan.gpus);
  const PlanExplanation explanation = explain_plan(plan, context, 0);
  ASSERT_EQ(explanation.layers.size(), 1u); // every Mixtral layer is MoE
  EXPECT_EQ(explanation.layers[0].kind, "moe");
  EXPECT_EQ(explanation.layers[0].count, 56);
  ASSERT_EQ(explanation.estimate.stages.size(), 8u);
  ASSERT_EQ(explanation.stage_memory.size(), 8u);
  // A middle stage holds 7 layers and nothing else: its per-micro-batch time is 7 layers plus
  // its blocking pipeline sends.
  const StageEstimate& middle = explanation.estimate.stages[3];
  EXPECT_NEAR(middle.per_micro_batch_s(),
              7 * explanation.layers[0].cost.total_s() + middle.pipeline_send_s, 1e-12);
  double peak = 0;
  for (const MemoryBreakdown& memory : explanation.stage_memory)
    peak = std::max(peak, memory.total_bytes());
  EXPECT_DOUBLE_EQ(peak, explanation.estimate.prediction.peak_memory_bytes);
}

TEST(PlanExplanation, AlternativesAreOtherPlansOfTheSameSpace) {
  const Plan plan = paper_plan(true);
  const CostContext context(plan.cluster, plan.gpus);
  const PlanExplanation explanation = explain_plan(plan, context, 3);
  ASSERT_EQ(explanation.alternatives.size(), 3u);
  double previous = -1e9;
  for (const Alternative& alternative : explanation.alternatives) {
    const Plan& other = alternative.plan.plan;
    EXPECT_FALSE(other.parallel == plan.parallel && other.options == plan.options &&
                 other.training == plan.training);
    EXPECT_EQ(other.options.capacity_factor, plan.options.capacity_factor);
    EXPECT_TRUE(other.options.folding);
    EXPECT_NEAR(alternative.step_time_delta_s,
                other.prediction->step_time_s - explanation.estimate.prediction.step_time_s, 1e-12);
    EXPECT_GE(alternative.step_time_delta_s, previous);
    previous = alternative.step_time_delta_s;
    EXPECT_NE(alternative.differences, "same sizes");
  }
  const nlohmann::json json = explanation_to_json(explanation);
  EXPECT_EQ(json["alternatives"].size(), 3u);
  EXPECT_EQ(json["stages"].size(), 8u);
  EXPECT_EQ(plan_from_json(json["alternatives"][0]["plan"]).parallel,
            explanation.alternatives[0].plan.plan.parallel);
}

} // namespace
} // namespace foldplan
