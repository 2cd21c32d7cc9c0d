// ParallelConfig: derived sizes, one test per validity rule (exact field, values in the rule), and
// the strict JSON form.
#include "parallel/parallel_config.hpp"

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "models/model_spec.hpp"

namespace foldplan {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Mixtral-8x22B shapes: every layer MoE, 8 experts, GQA with 8 groups.
ModelSpec moe_model() {
  ModelSpec model;
  model.name = "test-moe";
  model.num_layers = 56;
  model.hidden_size = 6144;
  model.ffn_hidden_size = 16384;
  model.num_attention_heads = 48;
  model.num_query_groups = 8;
  model.kv_channels = 128;
  model.vocab_size = 32768;
  model.moe.num_experts = 8;
  model.moe.ffn_hidden_size = 16384;
  model.moe.router_topk = 2;
  return model;
}

// Llama-3-8B shapes.
ModelSpec dense_model() {
  ModelSpec model;
  model.name = "test-dense";
  model.num_layers = 32;
  model.hidden_size = 4096;
  model.ffn_hidden_size = 14336;
  model.num_attention_heads = 32;
  model.num_query_groups = 8;
  model.kv_channels = 128;
  model.vocab_size = 128256;
  return model;
}

const TrainingShape kTraining{.seq_length = 4096, .global_batch_size = 256, .micro_batch_size = 1};

// 64 GPUs: TP2 PP4 (DP8) | ETP1 EP8 (EDP2), valid for moe_model() and kTraining.
ParallelConfig valid_config() {
  return {.tp = 2, .cp = 1, .dp = 8, .pp = 4, .vpp = 1, .etp = 1, .ep = 8, .edp = 2};
}

// The violation `find_violation` reports; a test failure when there is none.
ConfigViolation violation_of(const ParallelConfig& config, const ModelSpec& model,
                             const TrainingShape& training, std::int64_t world_size,
                             bool folding = true) {
  const auto found = find_violation(config, model, training, world_size, folding);
  if (!found)
    ADD_FAILURE() << "expected a violation, found none";
  return found.value_or(ConfigViolation{});
}

template <typename Action> InputError input_error_of(Action&& action) {
  try {
    action();
  } catch (const InputError& error) {
    return error;
  }
  ADD_FAILURE() << "expected an InputError";
  return InputError("", "");
}

// ---- make_parallel_config ----------------------------------------------------------------------

TEST(MakeParallelConfig, DerivesDataAndExpertDataParallelSizes) {
  const ParallelConfig config = make_parallel_config(128, {.tp = 2, .pp = 8, .ep = 8}, true);
  EXPECT_EQ(
      config,
      (ParallelConfig{.tp = 2, .cp = 1, .dp = 8, .pp = 8, .vpp = 1, .etp = 1, .ep = 8, .edp = 2}));
  EXPECT_EQ(config.world_size(), 128);
}

TEST(MakeParallelConfig, WithoutFoldingExpertTensorParallelIsTensorParallel) {
  const ParallelConfig config = make_parallel_config(64, {.tp = 4, .ep = 2}, false);
  EXPECT_EQ(config.etp, 4);
  EXPECT_EQ(config.dp, 16);
  EXPECT_EQ(config.edp, 8);
}

TEST(MakeParallelConfig, NamesTheFlagWhoseSizeDoesNotDivide) {
  const InputError tp = input_error_of([] { make_parallel_config(12, {.tp = 8}, true); });
  EXPECT_EQ(tp.field(), "--tp");
  EXPECT_EQ(tp.rule(), "world size 12 is not divisible by TP·CP·PP = 8·1·1 = 8");
  EXPECT_EQ(input_error_of([] { make_parallel_config(16, {.tp = 2, .cp = 3}, true); }).field(),
            "--cp");
  EXPECT_EQ(input_error_of([] { make_parallel_config(16, {.tp = 2, .pp = 3}, true); }).field(),
            "--pp");
  const InputError ep = input_error_of([] { make_parallel_config(16, {.tp = 2, .ep = 3}, true); });
  EXPECT_EQ(ep.field(), "--ep");
  EXPECT_EQ(ep.rule(), "world size 16 is not divisible by ETP·EP·PP = 1·3·1 = 3");
  EXPECT_EQ(
      input_error_of([] { make_parallel_config(16, {.tp = 2, .ep = 2, .etp = 3}, true); }).field(),
      "--etp");
}

TEST(MakeParallelConfig, RejectsNonPositiveSizes) {
  const InputError gpus = input_error_of([] { make_parallel_config(0, {}, true); });
  EXPECT_EQ(gpus.field(), "--gpus");
  EXPECT_EQ(gpus.rule(), "0 is not a positive integer");
  const InputError tp = input_error_of([] { make_parallel_config(8, {.tp = -2}, true); });
  EXPECT_EQ(tp.field(), "--tp");
  EXPECT_EQ(tp.rule(), "-2 is not a positive integer");
}

TEST(MakeParallelConfig, WithoutFoldingExpertParallelIsCarvedOutOfDataParallel) {
  // 16 GPUs TP2 CP2 → DP4; EP8 divides the 8 GPUs of a stage outside TP but not DP.
  const InputError ep =
      input_error_of([] { make_parallel_config(16, {.tp = 2, .cp = 2, .ep = 8}, false); });
  EXPECT_EQ(ep.field(), "--ep");
  EXPECT_TRUE(contains(ep.rule(), "8 does not divide DP 4")) << ep.rule();
  // The same sizes are fine with folding.
  EXPECT_EQ(make_parallel_config(16, {.tp = 2, .cp = 2, .ep = 8}, true).edp, 2);

  const InputError etp =
      input_error_of([] { make_parallel_config(16, {.tp = 2, .ep = 2, .etp = 1}, false); });
  EXPECT_EQ(etp.field(), "--etp");
  EXPECT_EQ(etp.rule(), "1 must equal TP 2 without folding");
}

TEST(MakeParallelConfig, VirtualStagesNeedAPipeline) {
  const InputError vpp = input_error_of([] { make_parallel_config(8, {.vpp = 2}, true); });
  EXPECT_EQ(vpp.field(), "--vpp");
  EXPECT_TRUE(contains(vpp.rule(), "2 needs PP > 1")) << vpp.rule();
}

// ---- find_violation: valid configurations ------------------------------------------------------

TEST(FindViolation, ValidConfigurationsHaveNone) {
  EXPECT_EQ(find_violation(valid_config(), moe_model(), kTraining, 64), std::nullopt);
  // Without folding: ETP = TP and EP inside DP.
  const ParallelConfig unfolded{
      .tp = 2, .cp = 1, .dp = 8, .pp = 4, .vpp = 1, .etp = 2, .ep = 4, .edp = 2};
  EXPECT_EQ(find_violation(unfolded, moe_model(), kTraining, 64, false), std::nullopt);
  const ParallelConfig dense{
      .tp = 8, .cp = 1, .dp = 2, .pp = 4, .vpp = 1, .etp = 1, .ep = 1, .edp = 16};
  EXPECT_EQ(find_violation(dense, dense_model(), kTraining, 64), std::nullopt);
  EXPECT_NO_THROW(validate_parallel_config(valid_config(), moe_model(), kTraining, 64));
}

// ---- find_violation: one test per rule ---------------------------------------------------------

TEST(FindViolation, SizesMustBePositive) {
  ParallelConfig config = valid_config();
  config.vpp = 0;
  const ConfigViolation found = violation_of(config, moe_model(), kTraining, 64);
  EXPECT_EQ(found.field, "parallel.vpp");
  EXPECT_EQ(found.rule, "0 is not a positive integer");
  EXPECT_FALSE(found.reason.empty());
}

TEST(FindViolation, TrainingSizesMustBePositive) {
  TrainingShape training = kTraining;
  training.micro_batch_size = 0;
  const ConfigViolation found = violation_of(valid_config(), moe_model(), training, 64);
  EXPECT_EQ(found.field, "training.micro_batch_size");
  EXPECT_EQ(found.rule, "0 is not a positive integer");
}

TEST(FindViolation, AttentionSizesMustMultiplyToTheWorld) {
  ParallelConfig config = valid_config();
  config.dp = 4;
  const ConfigViolation found = violation_of(config, moe_model(), kTraining, 64);
  EXPECT_EQ(found.field, "parallel.dp");
  EXPECT_EQ(found.rule, "TP·CP·DP·PP = 2·1·4·4 = 32 does not equal the world size 64");
}

TEST(FindViolation, ExpertSizesMustMultiplyToTheWorld) {
  ParallelConfig config = valid_config();
  config.edp = 4;
  const ConfigViolation found = violation_of(config, moe_model(), kTraining, 64);
  EXPECT_EQ(found.field, "parallel.edp");
  EXPECT_EQ(found.rule, "ETP·EP·EDP·PP = 1·8·4·4 = 128 does not equal the world size 64");
}

TEST(FindViolation, WithoutFoldingExpertTensorParallelMustEqualTensorParallel) {
  // valid_config() has ETP1 with TP2: fine folded, not unfolded.
  const ConfigViolation found = violation_of(valid_config(), moe_model(), kTraining, 64, false);
  EXPECT_EQ(found.field, "parallel.etp");
  EXPECT_EQ(found.rule, "1 must equal TP 2 without folding");
}

TEST(FindViolation, WithoutFoldingExpertParallelMustDivideDataParallel) {
  // 64 GPUs: TP2 CP2 PP4 (DP4) | ETP2 EP8 (EDP1): EP folds over CP, which older Megatron cannot.
  const ParallelConfig config{
      .tp = 2, .cp = 2, .dp = 4, .pp = 4, .vpp = 1, .etp = 2, .ep = 8, .edp = 1};
  EXPECT_EQ(find_violation(config, moe_model(), kTraining, 64, true), std::nullopt);
  const ConfigViolation found = violation_of(config, moe_model(), kTraining, 64, false);
  EXPECT_EQ(found.field, "parallel.ep");
  EXPECT_TRUE(contains(found.rule, "8 does not divide DP 4")) << found.rule;
}

TEST(FindViolation, ExpertParallelNeedsAMoeModel) {
  const ParallelConfig config{
      .tp = 2, .cp = 1, .dp = 8, .pp = 4, .vpp = 1, .etp = 1, .ep = 2, .edp = 8};
  const ConfigViolation found = violation_of(config, dense_model(), kTraining, 64);
  EXPECT_EQ(found.field, "parallel.ep");
  EXPECT_EQ(found.rule, "2 needs a MoE model; the model is dense");
}

TEST(FindViolation, ExpertParallelMustDivideTheExperts) {
  const ParallelConfig config = make_parallel_config(48, {.tp = 2, .pp = 4, .ep = 6}, true);
  const ConfigViolation found = violation_of(config, moe_model(), kTraining, 48);
  EXPECT_EQ(found.field, "parallel.ep");
  EXPECT_EQ(found.rule, "6 does not divide num_experts 8");
  EXPECT_EQ(found.reason, "ep does not divide experts");
}

TEST(FindViolation, TensorParallelMustDivideTheHeads) {
  const ParallelConfig config = make_parallel_config(40, {.tp = 5, .pp = 4, .ep = 2}, true);
  const ConfigViolation found = violation_of(config, moe_model(), kTraining, 40);
  EXPECT_EQ(found.field, "parallel.tp");
  EXPECT_EQ(found.rule, "5 does not divide num_attention_heads 48");
}

TEST(FindViolation, TensorParallelMustDivideQueryGroupsWhenThereAreAsManyAsTp) {
  ModelSpec model = moe_model();
  model.num_query_groups = 12;
  const ParallelConfig config = make_parallel_config(32, {.tp = 8, .pp = 4, .ep = 8}, true);
  const ConfigViolation found = violation_of(config, model, kTraining, 32);
  EXPECT_EQ(found.field, "parallel.tp");
  EXPECT_EQ(found.rule, "8 does not divide num_query_groups 12");
}

// Megatron attention.py: with fewer query groups than TP each rank holds one group.
TEST(FindViolation, FewerQueryGroupsThanTpAreAllowedWhenTheyDivideTheHeads) {
  const ParallelConfig config = make_parallel_config(64, {.tp = 16, .pp = 4, .ep = 8}, true);
  EXPECT_EQ(find_violation(config, moe_model(), kTraining, 64), std::nullopt); // 8 groups < 16

  ModelSpec model = moe_model();
  model.num_query_groups = 5;
  const ConfigViolation found = violation_of(config, model, kTraining, 64);
  EXPECT_EQ(found.field, "parallel.tp");
  EXPECT_EQ(found.rule,
            "num_query_groups 5 is below TP 16 and does not divide num_attention_heads 48");
}

TEST(FindViolation, TensorParallelMustDivideTheDenseFfn) {
  ModelSpec model = dense_model();
  model.ffn_hidden_size = 14340;
  const ParallelConfig config = make_parallel_config(32, {.tp = 8, .pp = 4}, true);
  const ConfigViolation found = violation_of(config, model, kTraining, 32);
  EXPECT_EQ(found.field, "parallel.tp");
  EXPECT_EQ(found.rule, "8 does not divide ffn_hidden_size 14340");
}

TEST(FindViolation, ExpertTensorParallelMustDivideTheExpertFfn) {
  ModelSpec model = moe_model();
  model.moe.ffn_hidden_size = 1000;
  const ParallelConfig config = make_parallel_config(64, {.tp = 2, .pp = 4, .etp = 16}, true);
  const ConfigViolation found = violation_of(config, model, kTraining, 64);
  EXPECT_EQ(found.field, "parallel.etp");
  EXPECT_EQ(found.rule, "16 does not divide moe_ffn_hidden_size 1000");
}

TEST(FindViolation, TensorParallelMustDivideTheSharedExperts) {
  ModelSpec model = moe_model();
  model.moe.shared_expert_intermediate_size = 1001;
  const ConfigViolation found = violation_of(valid_config(), model, kTraining, 64);
  EXPECT_EQ(found.field, "parallel.tp");
  EXPECT_EQ(found.rule, "2 does not divide moe_shared_expert_intermediate_size 1001");
}

TEST(FindViolation, ContextParallelNeedsTwoChunksPerRank) {
  const ParallelConfig config =
      make_parallel_config(64, {.tp = 2, .cp = 2, .pp = 4, .ep = 8}, true);
  TrainingShape training = kTraining;
  training.seq_length = 4094;
  const ConfigViolation found = violation_of(config, moe_model(), training, 64);
  EXPECT_EQ(found.field, "parallel.cp");
  EXPECT_EQ(found.rule, "seq_length 4094 is not divisible by 2·CP = 4");
  // Without CP any length is fine.
  training.seq_length = 4095;
  EXPECT_EQ(find_violation(valid_config(), moe_model(), training, 64), std::nullopt);
}

TEST(FindViolation, VirtualStagesNeedAPipeline) {
  const ParallelConfig config{
      .tp = 2, .cp = 1, .dp = 32, .pp = 1, .vpp = 2, .etp = 1, .ep = 8, .edp = 8};
  const ConfigViolation found = violation_of(config, moe_model(), kTraining, 64);
  EXPECT_EQ(found.field, "parallel.vpp");
  EXPECT_EQ(found.rule, "2 needs PP > 1 (the interleaved schedule needs a pipeline)");
}

TEST(FindViolation, PipelineMustSplitTheLayersEvenly) {
  const ParallelConfig config = make_parallel_config(64, {.tp = 2, .pp = 16, .ep = 4}, true);
  const ConfigViolation found = violation_of(config, moe_model(), kTraining, 64);
  EXPECT_EQ(found.field, "parallel.pp");
  EXPECT_EQ(found.rule, "16 does not divide num_layers 56");
}

TEST(FindViolation, VirtualStagesMustSplitTheLayersEvenly) {
  ParallelConfig config = valid_config();
  config.vpp = 4; // 56 layers over PP4·VPP4 = 16 chunks
  const ConfigViolation found = violation_of(config, moe_model(), kTraining, 64);
  EXPECT_EQ(found.field, "parallel.vpp");
  EXPECT_EQ(found.rule, "num_layers 56 is not divisible by PP·VPP = 4·4 = 16");
}

TEST(FindViolation, GlobalBatchMustSplitIntoMicroBatchesOverDataParallel) {
  TrainingShape training = kTraining;
  training.global_batch_size = 100;
  const ConfigViolation found = violation_of(valid_config(), moe_model(), training, 64);
  EXPECT_EQ(found.field, "training.global_batch_size");
  EXPECT_EQ(found.rule, "100 is not divisible by micro_batch_size·DP = 1·8 = 8");
}

// Megatron schedules.py: the interleaved schedule with the default group size PP needs M % PP == 0.
TEST(FindViolation, InterleavedScheduleNeedsMicroBatchesInWholeGroupsOfPp) {
  ParallelConfig config = valid_config();
  config.vpp = 2;
  TrainingShape training = kTraining;
  training.global_batch_size = 48; // 6 micro-batches over DP8
  const ConfigViolation found = violation_of(config, moe_model(), training, 64);
  EXPECT_EQ(found.field, "parallel.vpp");
  EXPECT_EQ(found.rule,
            "the interleaved schedule (VPP 2) needs the number of micro-batches 6 to be a "
            "multiple of PP 4");
  training.global_batch_size = 64; // 8 micro-batches
  EXPECT_EQ(find_violation(config, moe_model(), training, 64), std::nullopt);
  // Without interleaving 6 micro-batches are fine.
  training.global_batch_size = 48;
  EXPECT_EQ(find_violation(valid_config(), moe_model(), training, 64), std::nullopt);
}

TEST(ValidateParallelConfig, ThrowsTheViolationAsAnInputError) {
  const ParallelConfig config = make_parallel_config(48, {.tp = 2, .pp = 4, .ep = 6}, true);
  const InputError error =
      input_error_of([&] { validate_parallel_config(config, moe_model(), kTraining, 48); });
  EXPECT_EQ(error.field(), "parallel.ep");
  EXPECT_STREQ(error.what(), "parallel.ep: 6 does not divide num_experts 8");
}

TEST(NumMicroBatches, IsGlobalBatchOverMicroBatchTimesDataParallel) {
  EXPECT_EQ(
      num_micro_batches(valid_config(),
                        {.seq_length = 4096, .global_batch_size = 256, .micro_batch_size = 2}),
      16);
}

// ---- JSON
// ----------------------------------------------------------------------------------------

TEST(ParallelJson, RoundTrips) {
  const ParallelConfig config{
      .tp = 2, .cp = 2, .dp = 4, .pp = 4, .vpp = 2, .etp = 2, .ep = 8, .edp = 1};
  EXPECT_EQ(parallel_from_json(parallel_to_json(config)), config);
  const TrainingShape training{.seq_length = 8192, .global_batch_size = 512, .micro_batch_size = 2};
  EXPECT_EQ(training_from_json(training_to_json(training)), training);
  EXPECT_EQ(parallel_to_json(config).size(), 8u);
}

TEST(ParallelJson, EveryKeyIsRequiredPositiveAndKnown) {
  nlohmann::json json = parallel_to_json(valid_config());
  json.erase("edp");
  InputError missing = input_error_of([&] { parallel_from_json(json, "plan.parallel"); });
  EXPECT_EQ(missing.field(), "plan.parallel.edp");

  json = parallel_to_json(valid_config());
  json["tp"] = 0;
  InputError zero = input_error_of([&] { parallel_from_json(json); });
  EXPECT_EQ(zero.field(), "parallel.tp");
  EXPECT_EQ(zero.rule(), "0 is not a positive integer");

  json = parallel_to_json(valid_config());
  json["dpp"] = 2;
  EXPECT_EQ(input_error_of([&] { parallel_from_json(json); }).field(), "parallel.dpp");

  nlohmann::json training = training_to_json(kTraining);
  training.erase("micro_batch_size");
  EXPECT_EQ(input_error_of([&] { training_from_json(training); }).field(),
            "training.micro_batch_size");
  training = training_to_json(kTraining);
  training["seq"] = 4096;
  EXPECT_EQ(input_error_of([&] { training_from_json(training); }).field(), "training.seq");
}

} // namespace
} // namespace foldplan
