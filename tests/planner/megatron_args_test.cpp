// Megatron-LM export: hand-checked flags and rules first, then whole launch scripts compared with
// golden files under tests/data/megatron/ (FOLDPLAN_UPDATE_GOLDEN=1 rewrites them for review).
#include "planner/megatron_args.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include <gtest/gtest.h>

#include "core/errors.hpp"

namespace foldplan {
namespace {

struct PlanShape {
  std::string model = "mixtral-8x22b";
  std::string cluster = "dgx-h100";
  std::int64_t gpus = 128;
  TrainingShape training{.seq_length = 4096, .global_batch_size = 256, .micro_batch_size = 1};
  ParallelSizes sizes;
  PlanOptions options;
};

Plan make_plan(const PlanShape& shape) {
  Plan plan;
  plan.model = load_model(shape.model);
  plan.cluster = load_cluster(shape.cluster);
  plan.gpus = shape.gpus;
  plan.training = shape.training;
  plan.options = shape.options;
  plan.parallel = make_parallel_config(shape.gpus, shape.sizes, shape.options.folding);
  validate_plan(plan);
  return plan;
}

// The paper's folded Mixtral 8x22B plan: TP2 PP8 EP8 ETP1 on 128 H100s, capacity factor 1.
PlanShape paper_shape() {
  PlanShape shape;
  shape.sizes = {.tp = 2, .pp = 8, .ep = 8, .etp = 1};
  shape.options.capacity_factor = 1.0;
  return shape;
}

// Megatron's README example: Mixtral 8x7B on 64 GPUs, TP1 PP4 with 8 virtual stages, EP8.
PlanShape mixtral_8x7b_vpp_shape() {
  PlanShape shape;
  shape.model = "mixtral-8x7b";
  shape.gpus = 64;
  shape.sizes = {.tp = 1, .pp = 4, .vpp = 8, .ep = 8, .etp = 1};
  return shape;
}

std::optional<MegatronFlag> find_flag(const std::vector<MegatronFlag>& flags,
                                      const std::string& name) {
  const auto found = std::find_if(flags.begin(), flags.end(),
                                  [&](const MegatronFlag& flag) { return flag.name == name; });
  if (found == flags.end())
    return std::nullopt;
  return *found;
}

std::vector<std::string> values_of(const Plan& plan, const std::string& name) {
  const std::optional<MegatronFlag> flag = find_flag(megatron_flags(plan), name);
  EXPECT_TRUE(flag.has_value()) << name;
  return flag ? flag->values : std::vector<std::string>{};
}

bool has_flag(const Plan& plan, const std::string& name) {
  return find_flag(megatron_flags(plan), name).has_value();
}

void expect_input_error(const Plan& plan, const std::string& field, const std::string& rule) {
  try {
    megatron_flags(plan);
    ADD_FAILURE() << "expected InputError " << field;
  } catch (const InputError& error) {
    EXPECT_EQ(error.field(), field);
    EXPECT_EQ(error.rule(), rule);
  }
}

std::string golden_path(const std::string& name) {
  return std::string(FOLDPLAN_TEST_DATA_DIR) + "/megatron/" + name;
}

void expect_matches_golden(const std::string& text, const std::string& name) {
  const std::string path = golden_path(name);
  if (std::getenv("FOLDPLAN_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path) << text;
    return;
  }
  std::ifstream file(path);
  ASSERT_TRUE(file) << "no golden file " << path << " (FOLDPLAN_UPDATE_GOLDEN=1 writes it)";
  std::stringstream golden;
  golden << file.rdbuf();
  EXPECT_EQ(text, golden.str()) << "differs from " << path;
}

TEST(MegatronArgs, PaperPlanNamesEverySizeAsMegatronDoes) {
  const Plan plan = make_plan(paper_shape());
  EXPECT_EQ(values_of(plan, "--tensor-model-parallel-size"), std::vector<std::string>{"2"});
  EXPECT_EQ(values_of(plan, "--pipeline-model-parallel-size"), std::vector<std::string>{"8"});
  EXPECT_EQ(values_of(plan, "--expert-model-parallel-size"), std::vector<std::string>{"8"});
  EXPECT_EQ(values_of(plan, "--expert-tensor-parallel-size"), std::vector<std::string>{"1"});
  EXPECT_EQ(values_of(plan, "--moe-expert-capacity-factor"), std::vector<std::string>{"1.0"});
  EXPECT_EQ(values_of(plan, "--num-query-groups"), std::vector<std::string>{"8"});
  // Sequence parallelism is mandatory for MoE with TP > 1; the flag is --fp8-format, never --fp8.
  EXPECT_TRUE(has_flag(plan, "--sequence-parallel"));
  EXPECT_TRUE(has_flag(plan, "--group-query-attention"));
  EXPECT_FALSE(has_flag(plan, "--fp8"));
  EXPECT_FALSE(has_flag(plan, "--context-parallel-size"));
  EXPECT_FALSE(has_flag(plan, "--num-layers-per-virtual-pipeline-stage"));
  EXPECT_FALSE(has_flag(plan, "--moe-layer-freq")); // every Mixtral layer is MoE
}

TEST(MegatronArgs, ArgumentsAreEachFlagThenItsValues) {
  const Plan plan = make_plan(paper_shape());
  std::vector<std::string> flattened;
  for (const MegatronFlag& flag : megatron_flags(plan)) {
    flattened.push_back(flag.name);
    flattened.insert(flattened.end(), flag.values.begin(), flag.values.end());
  }
  const std::vector<std::string> arguments = megatron_arguments(plan);
  EXPECT_EQ(arguments, flattened);
  ASSERT_GE(arguments.size(), 2u);
  EXPECT_EQ(arguments[0], "--num-layers");
  EXPECT_EQ(arguments[1], "56");
}

TEST(MegatronArgs, GroupsComeInAStableOrder) {
  const std::vector<MegatronFlag> flags = megatron_flags(make_plan(paper_shape()));
  const auto position = [&](const std::string& name) {
    return std::find_if(flags.begin(), flags.end(),
                        [&](const MegatronFlag& flag) { return flag.name == name; }) -
           flags.begin();
  };
  // model, MoE, parallel, batch, optimizer and overlap, precision, synthetic run
  const std::vector<std::string> order = {"--num-layers",
                                          "--seq-length",
                                          "--num-experts",
                                          "--moe-grouped-gemm",
                                          "--tensor-model-parallel-size",
                                          "--expert-tensor-parallel-size",
                                          "--micro-batch-size",
                                          "--use-distributed-optimizer",
                                          "--bf16",
                                          "--transformer-impl",
                                          "--mock-data",
                                          "--log-throughput"};
  for (std::size_t i = 1; i < order.size(); ++i)
    EXPECT_LT(position(order[i - 1]), position(order[i])) << order[i - 1] << " " << order[i];
}

TEST(MegatronArgs, MoeLayerFreqIsAnIntegerOrMegatronsListExpression) {
  // DeepSeek-V3: three dense layers, then 58 MoE layers.
  PlanShape deepseek;
  deepseek.model = "deepseek-v3";
  deepseek.gpus = 256;
  deepseek.training.global_batch_size = 1024;
  deepseek.sizes = {.tp = 2, .ep = 64, .etp = 1};
  EXPECT_EQ(values_of(make_plan(deepseek), "--moe-layer-freq"),
            std::vector<std::string>{"([0]*3+[1]*58)"});

  // Every other layer MoE from layer 0 is Megatron's integer form.
  Plan alternating = make_plan(mixtral_8x7b_vpp_shape());
  alternating.model.moe.layer_freq = 2;
  EXPECT_EQ(values_of(alternating, "--moe-layer-freq"), std::vector<std::string>{"2"});

  // An explicit pattern becomes runs, first and last runs of one layer included.
  Plan patterned = alternating;
  patterned.model.moe.layer_freq = 1;
  patterned.model.moe.layer_pattern.assign(32, true);
  patterned.model.moe.layer_pattern[0] = false;
  patterned.model.moe.layer_pattern[30] = false;
  EXPECT_EQ(values_of(patterned, "--moe-layer-freq"),
            std::vector<std::string>{"([0]*1+[1]*29+[0]*1+[1]*1)"});
}

TEST(MegatronArgs, TopOneRoutingTakesTheSoftmaxFirst) {
  Plan plan = make_plan(mixtral_8x7b_vpp_shape());
  EXPECT_FALSE(has_flag(plan, "--moe-router-pre-softmax"));
  plan.model.moe.router_topk = 1;
  EXPECT_TRUE(has_flag(plan, "--moe-router-pre-softmax"));
}

TEST(MegatronArgs, VirtualStagesBecomeLayersPerVirtualStage) {
  const Plan plan = make_plan(mixtral_8x7b_vpp_shape());
  // 32 layers over PP4 × VPP8: one layer per virtual stage.
  EXPECT_EQ(values_of(plan, "--num-layers-per-virtual-pipeline-stage"),
            std::vector<std::string>{"1"});
  EXPECT_FALSE(has_flag(plan, "--sequence-parallel")); // TP1
}

TEST(MegatronArgs, DenseModelsHaveNoExpertFlags) {
  PlanShape shape;
  shape.model = "llama3-70b";
  shape.gpus = 64;
  shape.sizes = {.tp = 8, .pp = 4};
  const Plan plan = make_plan(shape);
  for (const char* name : {"--num-experts", "--expert-model-parallel-size",
                           "--expert-tensor-parallel-size", "--moe-token-dispatcher-type"}) {
    EXPECT_FALSE(has_flag(plan, name)) << name;
  }
}

TEST(MegatronArgs, EnvironmentFollowsTheDeviceConnectionsRule) {
  const auto connections = [](const Plan& plan) -> std::string {
    const std::vector<EnvironmentVariable> environment = megatron_environment(plan);
    if (environment.empty())
      return "unset";
    EXPECT_EQ(environment.size(), 1u);
    EXPECT_EQ(environment[0].name, "CUDA_DEVICE_MAX_CONNECTIONS");
    return environment[0].value;
  };
  // Hopper with TP > 1 (or CP > 1): Megatron asserts 1.
  EXPECT_EQ(connections(make_plan(paper_shape())), "1");
  // TP1 CP1: no rule.
  EXPECT_EQ(connections(make_plan(mixtral_8x7b_vpp_shape())), "unset");
  // CP alone also needs it.
  PlanShape context = mixtral_8x7b_vpp_shape();
  context.sizes = {.cp = 2, .pp = 4, .ep = 8, .etp = 1};
  context.training.global_batch_size = 128;
  EXPECT_EQ(connections(make_plan(context)), "1");
  // Blackwell has no such rule.
  PlanShape blackwell = paper_shape();
  blackwell.cluster = "gb200-nvl72";
  EXPECT_EQ(connections(make_plan(blackwell)), "unset");
  // The EP overlap wants more than one queue, even with TP > 1 on Hopper (Megatron warns there).
  PlanShape overlap = mixtral_8x7b_vpp_shape();
  overlap.sizes.tp = 2;
  overlap.options.overlap_moe_expert_parallel_comm = true;
  EXPECT_EQ(connections(make_plan(overlap)), "32");
}

TEST(MegatronArgs, RejectsWhatMegatronWouldReject) {
  // The EP overlap with a pipeline but no virtual stages (TransformerConfig.__post_init__).
  Plan overlap_without_vpp = make_plan(paper_shape());
  overlap_without_vpp.options.overlap_moe_expert_parallel_comm = true;
  expect_input_error(overlap_without_vpp, "options.overlap_moe_expert_parallel_comm",
                     "true with pp 8 requires vpp > 1");

  // The EP overlap with two MTP layers.
  PlanShape overlap = mixtral_8x7b_vpp_shape();
  overlap.options.overlap_moe_expert_parallel_comm = true;
  Plan two_mtp_layers = make_plan(overlap);
  two_mtp_layers.model.mtp_num_layers = 2;
  expect_input_error(two_mtp_layers, "options.overlap_moe_expert_parallel_comm",
                     "true allows at most 1 MTP layer; model.mtp_num_layers is 2");

  // fp8 on a GPU without fp8 tensor cores.
  PlanShape ampere = paper_shape();
  ampere.cluster = "dgx-a100";
  ampere.options.precision = Precision::fp8_tensorwise;
  expect_input_error(make_plan(ampere), "options.precision",
                     "fp8-tensorwise needs fp8 tensor cores; the cluster's A100-SXM4-80GB has "
                     "none (cluster.gpu.fp8_tflops is 0)");

  // A plan edited by hand into an invalid one is caught before any flag is written.
  Plan broken = make_plan(paper_shape());
  broken.parallel.ep = 3;
  EXPECT_THROW(megatron_flags(broken), InputError);
}

TEST(MegatronArgs, LaunchNeedsWholeNodes) {
  PlanShape partial = mixtral_8x7b_vpp_shape();
  partial.gpus = 4;
  partial.training.global_batch_size = 16;
  partial.sizes = {.tp = 1, .pp = 4, .ep = 1, .etp = 1};
  const std::string script = render_megatron_command(make_plan(partial));
  EXPECT_NE(script.find("torchrun --nproc-per-node 4 --nnodes 1 "), std::string::npos) << script;

  // torchrun starts as many processes on every node: 128 GPUs do not fill nodes of 48.
  Plan uneven = make_plan(paper_shape());
  uneven.cluster.gpus_per_node = 48;
  uneven.cluster.nvlink_domain_gpus = 48;
  try {
    render_megatron_command(uneven);
    ADD_FAILURE() << "expected InputError plan.gpus";
  } catch (const InputError& error) {
    EXPECT_EQ(error.field(), "plan.gpus");
    EXPECT_EQ(error.rule(), "128 is not a multiple of gpus_per_node 48 of cluster dgx-h100 "
                            "(torchrun needs whole nodes)");
  }
}

TEST(MegatronArgs, ContinuationLinesQuoteWhatTheShellWouldRead) {
  const std::string text = render_continuation_lines(
      {{"--moe-layer-freq", {"([0]*3+[1]*58)"}}, {"--name", {"it's"}}, {"--bf16", {}}});
  EXPECT_EQ(text, "  --moe-layer-freq '([0]*3+[1]*58)' \\\n"
                  "  --name 'it'\\''s' \\\n"
                  "  --bf16\n");
}

TEST(MegatronArgs, GoldenPaperPlanFolded) {
  expect_matches_golden(render_megatron_command(make_plan(paper_shape())),
                        "mixtral-8x22b-folded.txt");
}

TEST(MegatronArgs, GoldenPaperPlanWithoutFolding) {
  // The paper's baseline: ETP = TP = 2 and EP4 carved out of DP8.
  PlanShape shape = paper_shape();
  shape.sizes = {.tp = 2, .pp = 8, .ep = 4};
  shape.options.folding = false;
  expect_matches_golden(render_megatron_command(make_plan(shape)), "mixtral-8x22b-no-folding.txt");
}

TEST(MegatronArgs, GoldenVirtualPipeline) {
  expect_matches_golden(render_megatron_command(make_plan(mixtral_8x7b_vpp_shape())),
                        "mixtral-8x7b-vpp.txt");
}

TEST(MegatronArgs, GoldenExpertParallelOverlap) {
  PlanShape shape = mixtral_8x7b_vpp_shape();
  shape.options.overlap_moe_expert_parallel_comm = true;
  expect_matches_golden(render_megatron_command(make_plan(shape)), "mixtral-8x7b-ep-overlap.txt");
}

TEST(MegatronArgs, GoldenContextParallel) {
  // Long sequences: CP2 with all-to-all over heads, EP folded over TP×CP.
  PlanShape shape;
  shape.model = "mixtral-8x7b";
  shape.gpus = 32;
  shape.training = {.seq_length = 16384, .global_batch_size = 64, .micro_batch_size = 1};
  shape.sizes = {.tp = 2, .cp = 2, .pp = 2, .ep = 8, .etp = 1};
  shape.options.cp_comm_type = CpCommType::a2a;
  shape.options.recompute = Recompute::selective;
  expect_matches_golden(render_megatron_command(make_plan(shape)), "mixtral-8x7b-cp.txt");
}

TEST(MegatronArgs, GoldenDenseModel) {
  PlanShape shape;
  shape.model = "llama3-70b";
  shape.gpus = 64;
  shape.training = {.seq_length = 8192, .global_batch_size = 128, .micro_batch_size = 1};
  shape.sizes = {.tp = 8, .pp = 4};
  shape.options.recompute = Recompute::selective;
  expect_matches_golden(render_megatron_command(make_plan(shape)), "llama3-70b-dense.txt");
}

TEST(MegatronArgs, GoldenFp8WithMultiLatentAttention) {
  // DeepSeek-V3: MLA, one MTP layer, three dense layers, a shared expert; fp8 blockwise.
  PlanShape shape;
  shape.model = "deepseek-v3";
  shape.gpus = 256;
  shape.training.global_batch_size = 1024;
  shape.sizes = {.tp = 2, .ep = 64, .etp = 1};
  shape.options.precision = Precision::fp8_blockwise;
  expect_matches_golden(render_megatron_command(make_plan(shape)), "deepseek-v3-fp8.txt");
}

TEST(MegatronArgs, GoldenFullRecompute) {
  // Full recompute on H200s, with padded token dropping by position and no DP overlap.
  PlanShape shape = paper_shape();
  shape.cluster = "dgx-h200";
  shape.options.recompute = Recompute::full;
  shape.options.pad_to_capacity = true;
  shape.options.drop_policy = DropPolicy::position;
  shape.options.dispatcher = Dispatcher::allgather;
  shape.options.overlap_grad_reduce = false;
  shape.options.overlap_param_gather = false;
  expect_matches_golden(render_megatron_command(make_plan(shape)),
                        "mixtral-8x22b-full-recompute.txt");
}

} // namespace
} // namespace foldplan
