#include "costmodel/step_estimate.hpp"

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "costmodel/layer_costs.hpp"
#include "models/model_flops.hpp"

namespace foldplan {
namespace {

Plan make_plan(const std::string& model, std::int64_t gpus, ParallelSizes sizes,
               bool folding = true) {
  Plan plan;
  plan.model = load_model(model);
  plan.cluster = load_cluster("dgx-h100");
  plan.gpus = gpus;
  plan.training = {.seq_length = 4096, .global_batch_size = 256, .micro_batch_size = 1};
  plan.options.folding = folding;
  plan.parallel = make_parallel_config(gpus, sizes, folding);
  plan.options.capacity_factor = 1.0;
  validate_plan(plan);
  return plan;
}

double breakdown_sum(const Prediction& prediction) {
  double sum = 0;
  for (const auto& [name, seconds] : prediction.breakdown)
    sum += seconds;
  return sum;
}

TEST(StepEstimate, BreakdownSumsToTheStepAndMfuIsMegatrons) {
  const Plan plan = make_plan("mixtral-8x22b", 128, {.tp = 2, .pp = 8, .ep = 8, .etp = 1});
  const CostContext context(plan.cluster, plan.gpus);
  const Prediction p = estimate_step(context, plan).prediction;
  EXPECT_NEAR(breakdown_sum(p), p.step_time_s, 1e-9 * p.step_time_s);
  const double flops = megatron_flops_per_step(plan.model, 4096, 256, 2);
  EXPECT_NEAR(p.mfu, flops / (p.step_time_s * 128 * 989.5e12), 1e-12);
  EXPECT_NEAR(p.tflops_per_gpu, flops / (p.step_time_s * 128) / 1e12, 1e-9);
  EXPECT_NEAR(p.tokens_per_s_per_gpu, 256.0 * 4096 / p.step_time_s / 128, 1e-9);
}

// 1F1B: the first micro-batch passes every stage, the rest follow at the slowest stage's pace.
TEST(StepEstimate, OneFOneBPipelineFollowsItsFormula) {
  const Plan plan = make_plan("mixtral-8x22b", 128, {.tp = 2, .pp = 8, .ep = 8, .etp = 1});
  const CostContext context(plan.cluster, plan.gpus);
  const StepEstimate estimate = estimate_step(context, plan);
  ASSERT_EQ(estimate.stages.size(), 8u);
  EXPECT_EQ(estimate.micro_batches, 32);
  double sum = 0, slowest = 0;
  for (const StageEstimate& stage : estimate.stages) {
    sum += stage.per_micro_batch_s();
    slowest = std::max(slowest, stage.per_micro_batch_s());
  }
  EXPECT_NEAR(estimate.pipeline_s, sum + 31 * slowest, 1e-12);
  EXPECT_NEAR(estimate.bubble_s, estimate.pipeline_s - 32 * slowest, 1e-12);
  // Interior stages hold the same layers and cost the same.
  EXPECT_NEAR(estimate.stages[3].per_micro_batch_s(), estimate.stages[4].per_micro_batch_s(),
              1e-12);
}

TEST(StepEstimate, InterleavingShrinksTheBubble) {
  Plan plan = make_plan("mixtral-8x7b", 64, {.tp = 1, .pp = 4, .ep = 8, .etp = 1});
  const CostContext context(plan.cluster, plan.gpus);
  const StepEstimate plain = estimate_step(context, plan);
  plan.parallel = make_parallel_config(64, {.tp = 1, .pp = 4, .vpp = 4, .ep = 8, .etp = 1}, true);
  const StepEstimate interleaved = estimate_step(context, plan);
  EXPECT_LT(interleaved.bubble_s, plain.bubble_s / 2);
}

TEST(StepEstimate, CommunicationKindsAppearOnlyWithTheirDimension) {
  const Plan plan = make_plan("mixtral-8x7b", 8, {.tp = 1, .pp = 1, .ep = 8, .etp = 1});
  const CostContext context(plan.cluster, plan.gpus);
  const Prediction p = estimate_step(context, plan).prediction;
  EXPECT_EQ(p.breakdown.at("tp_comm"), 0.0);
  EXPECT_EQ(p.breakdown.at("cp_comm"), 0.0);
  EXPECT_EQ(p.breakdown.at("etp_comm"), 0.0);
  EXPECT_EQ(p.breakdown.at("pp_comm"), 0.0);
  EXPECT_EQ(p.breakdown.at("bubble"), 0.0);
  EXPECT_GT(p.breakdown.at("ep_comm"), 0.0);

  const Plan no_folding =
      make_plan("mixtral-8x22b", 128, {.tp = 2, .pp = 8, .ep = 4}, /*folding=*/false);
  const CostContext big(no_folding.cluster, no_folding.gpus);
  const Prediction q = estimate_step(big, no_folding).prediction;
  EXPECT_GT(q.breakdown.at("etp_comm"), 0.0);
  EXPECT_GT(q.breakdown.at("tp_comm"), 0.0);
  EXPECT_GT(q.breakdown.at("pp_comm"), 0.0);
}

// The paper's observation: once ETP·EP crosses the node, the MoE all-to-all goes over InfiniBand.
TEST(StepEstimate, ExpertGroupsAcrossNodesCostMore) {
  const Plan inside = make_plan("mixtral-8x22b-g8t8", 128, {.tp = 2, .pp = 8, .ep = 8, .etp = 1});
  const Plan across =
      make_plan("mixtral-8x22b-g8t8", 128, {.tp = 2, .pp = 8, .ep = 8}, /*folding=*/false);
  const CostContext context(inside.cluster, inside.gpus);
  const Prediction p_inside = estimate_step(context, inside).prediction;
  const Prediction p_across = estimate_step(context, across).prediction;
  EXPECT_GT(p_across.breakdown.at("ep_comm"), 2 * p_inside.breakdown.at("ep_comm"));
  EXPECT_GT(p_inside.mfu, p_across.mfu);
}

TEST(StepEstimate, RecomputeCostsTimeAndSavesMemory) {
  Plan plan = make_plan("mixtral-8x7b", 32, {.tp = 1, .pp = 4, .ep = 8, .etp = 1});
  const CostContext context(plan.cluster, plan.gpus);
  const Prediction none = estimate_step(context, plan).prediction;
  plan.options.recompute = Recompute::selective;
  const Prediction selective = estimate_step(context, plan).prediction;
  plan.options.recompute = Recompute::full;
  const Prediction full = estimate_step(context, plan).prediction;
  EXPECT_LT(none.step_time_s, selective.step_time_s);
  EXPECT_LT(selective.step_time_s, full.step_time_s);
  EXPECT_GT(none.peak_memory_bytes, full.peak_memory_bytes);
  // Full recompute repeats the forward: at most one more forward (≈ a third of the compute).
  EXPECT_LT(full.breakdown.at("compute"), 1.4 * none.breakdown.at("compute"));
}

TEST(StepEstimate, SkewedRoutingSlowsDroplessButNotPaddedPlans) {
  Plan plan = make_plan("mixtral-8x7b", 8, {.tp = 1, .pp = 1, .ep = 8, .etp = 1});
  plan.options.capacity_factor.reset();
  const CostContext context(plan.cluster, plan.gpus);
  const double balanced = estimate_step(context, plan, 1.0).prediction.step_time_s;
  const double skewed = estimate_step(context, plan, 1.5).prediction.step_time_s;
  EXPECT_GT(skewed, balanced);
  plan.options.capacity_factor = 1.0;
  plan.options.pad_to_capacity = true;
  EXPECT_DOUBLE_EQ(estimate_step(context, plan, 1.0).prediction.step_time_s,
                   estimate_step(context, plan, 1.5).prediction.step_time_s);
}

TEST(StepEstimate, OverlappingGradientReductionHelps) {
  Plan plan = make_plan("mixtral-8x22b", 128, {.tp = 2, .pp = 8, .ep = 8, .etp = 1});
  const CostContext context(plan.cluster, plan.gpus);
  const double overlapped = estimate_step(context, plan).prediction.step_time_s;
  plan.options.overlap_grad_reduce = false;
  plan.options.overlap_param_gather = false;
  EXPECT_GT(estimate_step(context, plan).prediction.step_time_s, overlapped);
}

// The dense layer's GEMMs, shape by shape, for a small GQA model with TP 2: what Megatron runs.
TEST(LayerCosts, DenseLayerRunsMegatronsGemmShapes) {
  ModelSpec model = load_model("llama3-70b");
  const ClusterSpec cluster = load_cluster("dgx-h100");
  const CostContext context(cluster, 8);
  const ParallelConfig config = make_parallel_config(8, {.tp = 2}, true);
  const TrainingShape training{.seq_length = 4096, .global_batch_size = 8, .micro_batch_size = 1};
  const PlanOptions options;
  const PlacedGroups groups = place_groups_of_rank_zero(context.cluster(), config);
  const LayerCostModel layers(context, model, config, training, options, groups);
  const ComputeCostModel& c = context.compute();
  const GemmPrecision bf16 = GemmPrecision::bf16;
  // h 8192, 64 heads / 8 groups of 128 over TP 2: QKV n = (4096 + 2·512), output k = 4096;
  // SwiGLU ffn 28672 / 2: fc1 n = 28672, fc2 k = 14336. Rows: the whole sequence (SP gathered).
  const double expected_forward =
      c.gemm_time_s(4096, 5120, 8192, bf16) + c.gemm_time_s(4096, 8192, 4096, bf16) +
      c.gemm_time_s(4096, 28672, 8192, bf16) + c.gemm_time_s(4096, 8192, 14336, bf16);
  const double expected_backward =
      c.gemm_time_s(4096, 8192, 5120, bf16) + c.gemm_time_s(8192, 5120, 4096, bf16) +
      c.gemm_time_s(4096, 4096, 8192, bf16) + c.gemm_time_s(4096, 8192, 4096, bf16) +
      c.gemm_time_s(4096, 8192, 28672, bf16) + c.gemm_time_s(8192, 28672, 4096, bf16) +
      c.gemm_time_s(4096, 14336, 8192, bf16) + c.gemm_time_s(14336, 8192, 4096, bf16);
  const PassCost dense = layers.dense_layer();
  EXPECT_NEAR(dense.forward.gemm_s, expected_forward, 1e-12);
  EXPECT_NEAR(dense.backward.gemm_s, expected_backward, 1e-12);
  // Attention: 32 heads and 4 KV heads per rank over the full causal sequence.
  const AttentionShape core{.batch = 1,
                            .heads = 32,
                            .kv_heads = 4,
                            .seq_q = 4096,
                            .seq_kv = 4096,
                            .qk_head_dim = 128,
                            .v_head_dim = 128,
                            .causal = true};
  EXPECT_NEAR(dense.forward.attention_s, c.attention_forward_time_s(core), 1e-12);
  EXPECT_NEAR(dense.backward.attention_s, c.attention_backward_time_s(core), 1e-12);
  // Megatron's p2p shape [s/(TP), mbs, h] in bf16.
  EXPECT_DOUBLE_EQ(layers.pipeline_message_bytes(), 2048.0 * 8192 * 2);
}

} // namespace
} // namespace foldplan

namespace foldplan {
namespace {

// Long context: CP 4 as a KV ring (p2p) and as all-to-alls over heads (a2a). Both run the same
// attention FLOPs; a2a exposes its all-to-alls, while the ring hides behind attention.
TEST(StepEstimate, ContextParallelVariantsBothCostCommunication) {
  Plan plan;
  plan.model = load_model("mixtral-8x7b");
  plan.cluster = load_cluster("dgx-h100");
  plan.gpus = 64;
  plan.training = {.seq_length = 32768, .global_batch_size = 64, .micro_batch_size = 1};
  plan.parallel = make_parallel_config(64, {.tp = 2, .cp = 4, .pp = 2, .ep = 8, .etp = 1}, true);
  validate_plan(plan);
  const CostContext context(plan.cluster, plan.gpus);
  const Prediction ring = estimate_step(context, plan).prediction;
  plan.options.cp_comm_type = CpCommType::a2a;
  validate_plan(plan);
  const Prediction all_to_all = estimate_step(context, plan).prediction;
  EXPECT_GT(all_to_all.breakdown.at("cp_comm"), 0.0);
  EXPECT_GT(all_to_all.breakdown.at("cp_comm"), ring.breakdown.at("cp_comm"));
  // Same causal work either way: within the efficiency difference of the block shapes.
  EXPECT_NEAR(all_to_all.breakdown.at("compute") / ring.breakdown.at("compute"), 1.0, 0.1);
}

TEST(StepEstimate, AllToAllContextParallelNeedsHeadsToDivide) {
  Plan plan;
  plan.model = load_model("mixtral-8x7b"); // 32 heads, 8 KV groups
  plan.cluster = load_cluster("dgx-h100");
  plan.gpus = 64;
  plan.training = {.seq_length = 32768, .global_batch_size = 64, .micro_batch_size = 1};
  plan.parallel = make_parallel_config(64, {.tp = 4, .cp = 4, .ep = 8, .etp = 1}, true);
  plan.options.cp_comm_type = CpCommType::a2a;
  try {
    validate_plan(plan);
    FAIL() << "expected InputError";
  } catch (const InputError& error) {
    EXPECT_STREQ(error.what(), "options.cp_comm_type: a2a needs cp 4 to divide the heads per TP "
                               "rank (8 query, 2 key/value)");
  }
}

} // namespace
} // namespace foldplan

namespace foldplan {
namespace {

// A dense layer streams its two norms and two residual adds and the MLP activation; the MLP's
// norm and residual were once missing (the MoE path had them).
TEST(LayerCosts, DenseLayerCountsBothNormsAndResiduals) {
  const ModelSpec model = load_model("llama3-70b");
  const ClusterSpec cluster = load_cluster("dgx-h100");
  const CostContext context(cluster, 8);
  const ParallelConfig config = make_parallel_config(8, {.tp = 2}, true);
  const TrainingShape training{.seq_length = 4096, .global_batch_size = 8, .micro_batch_size = 1};
  const PlanOptions options;
  const PlacedGroups groups = place_groups_of_rank_zero(context.cluster(), config);
  const LayerCostModel layers(context, model, config, training, options, groups);
  const ComputeCostModel& c = context.compute();
  const double shard = 2048.0 * 8192 * 2;           // s/TP tokens of h in bf16
  const double activation = 4096.0 * 3 * 14336 * 2; // fc1 output read, fc2 input written
  const double expected =
      2 * (c.memory_bound_time_s(shard * 2) + c.memory_bound_time_s(shard * 3)) +
      c.memory_bound_time_s(activation);
  EXPECT_NEAR(layers.dense_layer().forward.memory_bound_s, expected, 1e-12);
}

} // namespace
} // namespace foldplan
