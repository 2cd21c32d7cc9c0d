#include "costmodel/memory_model.hpp"

#include <gtest/gtest.h>

#include "models/parameter_count.hpp"
#include "models/vocab_padding.hpp"
#include "topologies/cluster_spec.hpp"

namespace foldplan {
namespace {

// A GPT-style dense model: 4 layers, h 1024, f = 4h, 16 heads of 64 (MHA), GeLU, LayerNorm, tied
// embeddings, GPT-2's 50257 tokens.
ModelSpec small_dense_gpt() {
  ModelSpec model;
  model.name = "small-dense-gpt";
  model.num_layers = 4;
  model.hidden_size = 1024;
  model.ffn_hidden_size = 4096;
  model.num_attention_heads = 16;
  model.num_query_groups = 16;
  model.kv_channels = 64;
  model.vocab_size = 50257;
  model.activation = Activation::gelu;
  model.normalization = Normalization::layernorm;
  model.untie_embeddings_and_output_weights = false;
  validate_model(model);
  return model;
}

// A small MoE: 4 MoE layers, h 1024, GQA 16 heads / 4 groups of 64, SwiGLU, RMSNorm, untied,
// 8 experts of F 2048, top-2, a shared expert of 1024.
ModelSpec small_moe() {
  ModelSpec model;
  model.name = "small-moe";
  model.num_layers = 4;
  model.hidden_size = 1024;
  model.ffn_hidden_size = 4096;
  model.num_attention_heads = 16;
  model.num_query_groups = 4;
  model.kv_channels = 64;
  model.vocab_size = 32000;
  model.activation = Activation::swiglu;
  model.normalization = Normalization::rmsnorm;
  model.untie_embeddings_and_output_weights = true;
  model.moe.num_experts = 8;
  model.moe.ffn_hidden_size = 2048;
  model.moe.router_topk = 2;
  model.moe.shared_expert_intermediate_size = 1024;
  validate_model(model);
  return model;
}

ParallelConfig folded(std::int64_t world, ParallelSizes sizes) {
  return make_parallel_config(world, sizes, /*folding=*/true);
}

TrainingShape shape(std::int64_t seq, std::int64_t gbs, std::int64_t mbs = 1) {
  return TrainingShape{.seq_length = seq, .global_batch_size = gbs, .micro_batch_size = mbs};
}

PlanOptions with_recompute(Recompute recompute) {
  PlanOptions options;
  options.recompute = recompute;
  return options;
}

double model_state_bytes(const MemoryBreakdown& memory) {
  return memory.weights_bytes + memory.gradients_bytes + memory.optimizer_bytes;
}

// ---- (a) Megatron's weight and optimizer estimate ----------------------------------------------

// theoretical_memory_usage.py by hand for small_dense_gpt, TP2 PP2 DP2 (8 GPUs), dist-opt:
//   V = padded_vocab_size(50257, 2) = 197·256 = 50432;  h·V = 51,642,368
//   attention 2hq + 2h·kv = 4h² = 4,194,304;  MLP (GeLU) 2hf = 8,388,608
//   layer norms 2·h·norm_size(2) = 4096;  final norm 2h = 2048
//   tp_sharded = (4,194,304 + 8,388,608)·4/2 + 51,642,368 = 76,808,192   → ÷ TP = 38,404,096
//   replicated = (4096·4 + 2048)/2 = 9,216
//   bytes = (38,404,096 + 9,216) · (6 + 12/DP) = 38,413,312 · 12 = 460,959,744
TEST(MemoryEstimator, DenseWeightsAndOptimizerMatchTheoreticalMemoryUsage) {
  const ModelSpec model = small_dense_gpt();
  const ParallelConfig config = folded(8, {.tp = 2, .pp = 2});
  ASSERT_EQ(config.dp, 2);
  ASSERT_EQ(padded_vocab_size(model.vocab_size, 2), 50432);
  EXPECT_DOUBLE_EQ(megatron_estimator_weight_and_optimizer_bytes(model, config), 460959744.0);
}

// The same case through the per-rank model with the estimator's DP-only sharding: the first stage
// holds layers 0-1 and the embedding, 38,412,288 parameters a GPU — the estimator's figure less
// its 1/PP share of the final norm (2048/2 = 1024), which Megatron places on the last stage.
TEST(MemoryEstimator, FirstStageOfDenseModelIsTheEstimateLessItsShareOfTheFinalNorm) {
  const ModelSpec model = small_dense_gpt();
  const ParallelConfig config = folded(8, {.tp = 2, .pp = 2});
  const MemoryBreakdown first = memory_per_gpu(model, config, shape(2048, 16), PlanOptions{}, 0,
                                               1.0, OptimizerSharding::data_parallel_only);
  EXPECT_DOUBLE_EQ(first.dense_parameters, 38412288.0);
  EXPECT_DOUBLE_EQ(model_state_bytes(first), 460959744.0 - 1024.0 * 12);
  // Tied embeddings with PP > 1: the last stage keeps its own copy of the table as the output
  // layer, plus the final norm.
  const MemoryBreakdown last = memory_per_gpu(model, config, shape(2048, 16), PlanOptions{}, 1, 1.0,
                                              OptimizerSharding::data_parallel_only);
  EXPECT_DOUBLE_EQ(last.dense_parameters, 38412288.0 + 2048);
}

// small_moe, 16 GPUs: TP2 PP2 (DP 4), ETP1 EP4 (EDP 2). By hand, §5.1's three buckets:
//   attention 2·1024·1024 + 2·1024·256 = 2,621,440;  shared 3·1024·1024 = 3,145,728
//   routed 8 · 3·1024·2048 = 50,331,648;  norms 2·1024 = 2048;  router 1024·8 = 8192;  final 1024
//   V = 32000 (already a multiple of 256);  h·V = 32,768,000
//   tp_sharded = (2,621,440 + 3,145,728)·4/2 + 32,768,000 = 44,302,336     → ÷ TP = 22,151,168
//   replicated = ((2048 + 8192)·4 + 1024)/2 = 20,992
//   expert     = 50,331,648·4/2 = 100,663,296                              → ÷ ETP·EP = 25,165,824
//   bytes = (22,151,168 + 20,992)·(6 + 12/4) + 25,165,824·(6 + 12/2)
//         = 199,549,440 + 301,989,888 = 501,539,328
TEST(MemoryEstimator, MoeWeightsAndOptimizerMatchTheoreticalMemoryUsage) {
  const ModelSpec model = small_moe();
  const ParallelConfig config = folded(16, {.tp = 2, .pp = 2, .ep = 4, .etp = 1});
  ASSERT_EQ(config.dp, 4);
  ASSERT_EQ(config.edp, 2);
  EXPECT_DOUBLE_EQ(megatron_estimator_weight_and_optimizer_bytes(model, config), 501539328.0);

  const MemoryBreakdown first = memory_per_gpu(model, config, shape(2048, 16), PlanOptions{}, 0,
                                               1.0, OptimizerSharding::data_parallel_only);
  EXPECT_DOUBLE_EQ(first.expert_parameters, 25165824.0);
  EXPECT_DOUBLE_EQ(first.dense_parameters, 22172160.0 - 512); // less final_norm / PP
  EXPECT_DOUBLE_EQ(model_state_bytes(first), 501539328.0 - 512 * 9);
}

// The real distributed optimizer shards dense state over DP×CP; the estimator over DP. Expert
// state is over EDP either way. small_moe on 32 GPUs, TP2 CP2 PP2 (DP 4), ETP1 EP4 (EDP 4).
TEST(MemoryModel, ContextParallelShardsOnlyTheDenseOptimizerState) {
  const ModelSpec model = small_moe();
  const ParallelConfig config = folded(32, {.tp = 2, .cp = 2, .pp = 2, .ep = 4, .etp = 1});
  ASSERT_EQ(config.dp, 4);
  ASSERT_EQ(config.edp, 4);
  const TrainingShape training = shape(2048, 16);
  const MemoryBreakdown real = memory_per_gpu(model, config, training, PlanOptions{}, 0);
  const MemoryBreakdown estimator = memory_per_gpu(model, config, training, PlanOptions{}, 0, 1.0,
                                                   OptimizerSharding::data_parallel_only);
  EXPECT_DOUBLE_EQ(estimator.optimizer_bytes - real.optimizer_bytes,
                   12 * real.dense_parameters * (1.0 / 4 - 1.0 / 8));
  EXPECT_DOUBLE_EQ(real.weights_bytes, estimator.weights_bytes);
}

// With TP = EP = PP = 1 one GPU holds every parameter exactly once (vocab tables padded to 128
// rows): DeepSeek-V3 exercises MLA, first-k-dense layers and MTP; Mixtral across PP = 8 stages.
TEST(MemoryModel, EveryParameterIsHeldOnceWithoutModelParallelism) {
  const ModelSpec deepseek = load_model("deepseek-v3");
  const MemoryBreakdown whole =
      memory_per_gpu(deepseek, folded(8, {}), shape(4096, 8), PlanOptions{}, 0);
  const double padding_rows =
      static_cast<double>(padded_vocab_size(deepseek.vocab_size, 1) - deepseek.vocab_size);
  EXPECT_DOUBLE_EQ(whole.dense_parameters + whole.expert_parameters,
                   static_cast<double>(total_parameters(deepseek, MtpLayers::included)) +
                       2 * padding_rows * static_cast<double>(deepseek.hidden_size));

  const ModelSpec mixtral = load_model("mixtral-8x22b");
  const ParallelConfig config = folded(8, {.pp = 8});
  double held = 0;
  for (std::int64_t rank = 0; rank < 8; ++rank) {
    const MemoryBreakdown stage = memory_per_gpu(mixtral, config, shape(4096, 8), {}, rank);
    held += stage.dense_parameters + stage.expert_parameters;
  }
  EXPECT_DOUBLE_EQ(held, static_cast<double>(total_parameters(mixtral))); // 32000 needs no pad
}

// ---- (b) Megatron's activation estimate --------------------------------------------------------

// compute_activation_memory (SP + selective) by hand for small_dense_gpt, s 2048, b 1, TP2 PP2
// VPP2: s·b·h = 2,097,152; per layer 34·s·b·h = 71,303,168; × 4 layers = 285,212,672;
// + embedding input 8·s·b·PP = 32,768 + embedding dropout s·b·h·PP = 4,194,304 = 289,439,744;
// × (1 + (PP−1)/(PP·VPP)) = 1.25 → 361,799,680; ÷ TP = 180,899,840.
TEST(MemoryEstimator, ActivationsWithSequenceParallelAndInterleaving) {
  const ModelSpec model = small_dense_gpt();
  const ParallelConfig config = folded(8, {.tp = 2, .pp = 2, .vpp = 2});
  EXPECT_DOUBLE_EQ(
      megatron_estimator_activation_bytes(model, config, shape(2048, 16), Recompute::selective, 8),
      180899840.0);
}

// PP = 1 adds the output layer and loss, s·b·h·4·(1 + V/h) = 8,388,608·50.25 = 421,527,552:
// (285,212,672 + 16,384 + 2,097,152 + 421,527,552) / 2 = 354,426,880.
// 1F1B with fewer micro-batches than stages scales by M/PP: TP2 PP4, M 2:
// (285,212,672 + 65,536 + 8,388,608) · 2/4 / 2 = 73,416,704.
TEST(MemoryEstimator, ActivationsOutputLayerTermAndShortPipelines) {
  const ModelSpec model = small_dense_gpt();
  EXPECT_DOUBLE_EQ(megatron_estimator_activation_bytes(model, folded(2, {.tp = 2}), shape(2048, 16),
                                                       Recompute::selective, 8),
                   354426880.0);
  EXPECT_DOUBLE_EQ(megatron_estimator_activation_bytes(model, folded(8, {.tp = 2, .pp = 4}),
                                                       shape(2048, 2), Recompute::selective, 2),
                   73416704.0);
}

// Without SP (TP = 1 turns it off) compute_activation_memory_without_sp: s·b·h·(10 + 24) per
// layer, the embedding terms, logits and final-norm output (s·b·V + s·b·h)·2 at PP = 1 with
// V = padded_vocab_size(50257, 1) = 50304, × 1.05:
// (285,212,672 + 16,384 + 2,097,152 + (103,022,592 + 2,097,152)·2) · 1.05 = 522,443,980.8.
TEST(MemoryEstimator, ActivationsWithoutSequenceParallel) {
  const ModelSpec model = small_dense_gpt();
  EXPECT_NEAR(megatron_estimator_activation_bytes(model, folded(1, {}), shape(2048, 16),
                                                  Recompute::selective, 16),
              522443980.8, 1e-6);
}

// The per-layer model is derived from what TE saves: for the estimator's own case (MHA, f = 4h,
// SP, selective) it is Korthikanti's 34·s·b·h/TP less the two dropout masks (s·b·h/TP bytes each)
// that a model without dropout does not keep: 12 (attention) + 20 (MLP) s·b·h/TP.
TEST(MemoryModel, DenseLayerIsKorthikantiLessDropoutMasks) {
  const ModelSpec model = small_dense_gpt();
  const ParallelConfig config = folded(8, {.tp = 2, .pp = 2});
  const ActivationBytes layer = decoder_layer_activation_bytes(
      model, config, shape(2048, 16), with_recompute(Recompute::selective), 0);
  const double sbh_over_tp = 2048.0 * 1024 / 2;
  EXPECT_DOUBLE_EQ(layer.attention, 12 * sbh_over_tp);
  EXPECT_DOUBLE_EQ(layer.mlp, 20 * sbh_over_tp);
  EXPECT_DOUBLE_EQ(layer.attention + layer.mlp + 2 * sbh_over_tp, 34 * sbh_over_tp);
}

// MLA (DeepSeek-V3, TP2, s 4096, b 1: 2048 tokens in the SP region, 4096 in the TP region, 64
// heads a rank): compressed q and kv with their normed copies 2·2048·(2·1536 + 2·512 + 64) =
// 17,039,360; Q and K of head dim 128 + 64, V and the output of 128: 2·4096·64·(2·192 + 2·128) =
// 335,544,320; input norm pair 2·2·2048·7168 = 58,720,256; softmax statistics 4·4096·64 =
// 1,048,576 (dropped by selective recompute) → 412,352,512.
TEST(MemoryModel, MlaAttentionActivationsByHand) {
  const ModelSpec model = load_model("deepseek-v3");
  const ParallelConfig config = folded(16, {.tp = 2, .ep = 8, .etp = 1});
  const TrainingShape training = shape(4096, 16);
  EXPECT_DOUBLE_EQ(decoder_layer_activation_bytes(model, config, training, {}, 0).attention,
                   412352512.0);
  EXPECT_DOUBLE_EQ(decoder_layer_activation_bytes(model, config, training,
                                                  with_recompute(Recompute::selective), 0)
                       .attention,
                   412352512.0 - 1048576);
}

// ---- (c) invariants ----------------------------------------------------------------------------

TEST(MemoryModel, WeightsShrinkAsTensorOrExpertParallelismGrows) {
  const ModelSpec model = load_model("mixtral-8x22b");
  const TrainingShape training = shape(4096, 256);
  double previous = 0;
  for (const std::int64_t tp : {4, 2, 1}) {
    const MemoryBreakdown memory =
        memory_per_gpu(model, folded(64, {.tp = tp, .pp = 8, .ep = 8, .etp = 1}), training, {}, 0);
    EXPECT_GT(memory.weights_bytes, previous) << "tp " << tp;
    previous = memory.weights_bytes;
  }
  previous = 0;
  for (const std::int64_t ep : {8, 4, 2, 1}) {
    const MemoryBreakdown memory =
        memory_per_gpu(model, folded(64, {.tp = 1, .pp = 8, .ep = ep, .etp = 1}), training, {}, 0);
    EXPECT_GT(memory.weights_bytes, previous) << "ep " << ep;
    previous = memory.weights_bytes;
  }
}

TEST(MemoryModel, FullRecomputeBelowSelectiveBelowNone) {
  const ParallelConfig config = folded(128, {.tp = 2, .pp = 8, .ep = 8, .etp = 1});
  for (const ModelSpec& model : {load_model("mixtral-8x22b"), load_model("deepseek-v3")}) {
    const ParallelConfig model_config =
        model.num_layers % 8 == 0 ? config : folded(128, {.tp = 2, .ep = 8, .etp = 1});
    const auto activations = [&](Recompute recompute) {
      return memory_per_gpu(model, model_config, shape(4096, 256), with_recompute(recompute), 0)
          .activations_bytes;
    };
    EXPECT_LT(activations(Recompute::full), activations(Recompute::selective)) << model.name;
    EXPECT_LT(activations(Recompute::selective), activations(Recompute::none)) << model.name;
  }
}

// 1F1B: rank r holds min(PP − r, M) micro-batches, so the first rank holds the most layer
// activations; with fewer micro-batches than stages the early ranks hold them all.
TEST(MemoryModel, FirstStageHoldsMostMicroBatchesUnder1F1B) {
  const ModelSpec model = load_model("mixtral-8x22b");
  const ParallelConfig config = folded(128, {.tp = 2, .pp = 8, .ep = 8, .etp = 1});
  ASSERT_EQ(num_micro_batches(config, shape(4096, 256)), 32);
  double previous = 0;
  for (std::int64_t rank = 7; rank >= 0; --rank) {
    const MemoryBreakdown memory = memory_per_gpu(model, config, shape(4096, 256), {}, rank);
    EXPECT_EQ(memory.in_flight_chunks, 8 - rank);
    EXPECT_GT(memory.activations.attention, previous) << "rank " << rank;
    previous = memory.activations.attention;
  }
  EXPECT_EQ(in_flight_chunks(config, 3, 0, false), 3);
  EXPECT_EQ(in_flight_chunks(config, 3, 6, false), 2);
  EXPECT_EQ(in_flight_chunks(folded(8, {}), 4, 0, false), 1);
}

// Interleaving: rank 0 holds 2·(PP−1) + (VPP−1)·PP + 1 chunks of L/(PP·VPP) layers, i.e.
// L·(1 + (PP−1)/(PP·VPP)) layers' worth against L under 1F1B (§6, the estimator's factor).
TEST(MemoryModel, InterleavingRaisesInFlightActivations) {
  const ModelSpec model = small_dense_gpt();
  const TrainingShape training = shape(2048, 16);
  const MemoryBreakdown plain =
      memory_per_gpu(model, folded(8, {.tp = 2, .pp = 2}), training, {}, 0);
  const MemoryBreakdown interleaved =
      memory_per_gpu(model, folded(8, {.tp = 2, .pp = 2, .vpp = 2}), training, {}, 0);
  EXPECT_EQ(plain.in_flight_chunks, 2);
  EXPECT_EQ(interleaved.in_flight_chunks, 2 * 1 + 1 * 2 + 1);
  EXPECT_DOUBLE_EQ(interleaved.activations.attention / plain.activations.attention,
                   1 + 1.0 / (2 * 2));
  EXPECT_GT(interleaved.activations_bytes, plain.activations_bytes);
  // PP4 VPP2, M 8: rank 0 warms up 2·3 + 4 steps, rank 3 only 4. With M 4 the warm-up would
  // exceed all M·VPP = 8 chunks, so the rank holds them all.
  const ParallelConfig pp4_vpp2 = folded(16, {.pp = 4, .vpp = 2});
  EXPECT_EQ(in_flight_chunks(pp4_vpp2, 8, 0, false), 2 * 3 + 1 * 4 + 1);
  EXPECT_EQ(in_flight_chunks(pp4_vpp2, 8, 3, false), 0 + 1 * 4 + 1);
  EXPECT_EQ(in_flight_chunks(pp4_vpp2, 4, 0, false), 8);
}

// EP overlap (combined 1F1B) keeps one more micro-batch (PP = 1) or chunk (interleaved) alive.
TEST(MemoryModel, ExpertParallelOverlapAddsExactlyOneMicroBatch) {
  const ModelSpec model = small_moe();
  PlanOptions overlap;
  overlap.overlap_moe_expert_parallel_comm = true;
  const TrainingShape training = shape(2048, 32);

  const ParallelConfig single_stage = folded(8, {.tp = 2, .ep = 4, .etp = 1});
  const MemoryBreakdown without = memory_per_gpu(model, single_stage, training, {}, 0);
  const MemoryBreakdown with = memory_per_gpu(model, single_stage, training, overlap, 0);
  EXPECT_EQ(without.in_flight_chunks, 1);
  EXPECT_EQ(with.in_flight_chunks, 2);
  const double one_micro_batch = without.activations_bytes - without.activations.working_set;
  EXPECT_DOUBLE_EQ(with.activations_bytes - with.activations.working_set, 2 * one_micro_batch);

  // The last rank of PP2 VPP2 (one MoE layer a chunk): 2·0 + (2 − 1)·2 + 1 = 3 chunks, then 4.
  const ParallelConfig vpp2 = folded(32, {.tp = 2, .pp = 2, .vpp = 2, .ep = 4, .etp = 1});
  const MemoryBreakdown plain_chunks = memory_per_gpu(model, vpp2, training, {}, 1);
  const MemoryBreakdown overlap_chunks = memory_per_gpu(model, vpp2, training, overlap, 1);
  ASSERT_EQ(plain_chunks.in_flight_chunks, 3);
  EXPECT_EQ(overlap_chunks.in_flight_chunks, plain_chunks.in_flight_chunks + 1);
  const double one_chunk = plain_chunks.activations.routed_experts / 3;
  EXPECT_DOUBLE_EQ(overlap_chunks.activations.routed_experts,
                   plain_chunks.activations.routed_experts + one_chunk);
}

// Mixtral-8x22B, TP2 EP8 ETP1, s 4096, b 1: T = 2048 tokens a rank, k 2, so 4096 expert rows.
// Routed activations per layer: fc1 input 2·4096·6144 = 50,331,648; fc1 output and SwiGLU output
// 2·4096·3·16384 = 402,653,184 (together the reference's b·T·k·(ETP·H + 3F) = 452,984,832);
// probabilities 4·4096 = 16,384; router 2048·(8·(4+4+1) + 2·(4+8)) = 196,608 → 453,197,824.
TEST(MemoryModel, RoutedExpertActivationsByHand) {
  const ModelSpec model = load_model("mixtral-8x22b");
  const ParallelConfig config = folded(128, {.tp = 2, .pp = 8, .ep = 8, .etp = 1});
  const TrainingShape training = shape(4096, 256);
  EXPECT_DOUBLE_EQ(routed_expert_rows(model, config, training, {}), 4096.0);
  EXPECT_DOUBLE_EQ(decoder_layer_activation_bytes(model, config, training, {}, 0).routed_experts,
                   453197824.0);
  // ETP 2 doubles the rows a rank receives and halves their width: capacity ceil(2048·2/8·1.25) =
  // 640 a source rank and expert, 8·640·2 = 10,240 rows when padded.
  const ParallelConfig expert_tp = folded(128, {.tp = 2, .pp = 8, .ep = 4, .etp = 2});
  EXPECT_DOUBLE_EQ(routed_expert_rows(model, expert_tp, training, {}), 8192.0);
  PlanOptions padded;
  padded.capacity_factor = 1.25;
  padded.pad_to_capacity = true;
  EXPECT_DOUBLE_EQ(routed_expert_rows(model, expert_tp, training, padded), 10240.0);
}

TEST(MemoryModel, CapacityPaddingFixesRoutedActivationsWhateverTheImbalance) {
  const ModelSpec model = load_model("mixtral-8x22b");
  const ParallelConfig config = folded(128, {.tp = 2, .pp = 8, .ep = 8, .etp = 1});
  const TrainingShape training = shape(4096, 256);
  PlanOptions padded;
  padded.capacity_factor = 1.0;
  padded.pad_to_capacity = true;
  PlanOptions dropping = padded;
  dropping.pad_to_capacity = false;
  const auto routed = [&](const PlanOptions& options, double imbalance) {
    return memory_per_gpu(model, config, training, options, 0, imbalance)
        .activations.routed_experts;
  };
  EXPECT_DOUBLE_EQ(routed(padded, 1.0), routed(padded, 3.0));
  EXPECT_GT(routed(PlanOptions{}, 3.0), routed(PlanOptions{}, 1.0)); // dropless grows
  EXPECT_DOUBLE_EQ(routed(dropping, 3.0), routed(padded, 1.0));      // dropping is bounded by cf
  // Balanced at cf 1.0 nothing is dropped.
  EXPECT_DOUBLE_EQ(routed(dropping, 1.0), routed(PlanOptions{}, 1.0));
}

TEST(MemoryModel, PeakIsTheMostLoadedRankAndTermsSumToTotal) {
  const ModelSpec model = load_model("mixtral-8x22b");
  const ParallelConfig config = folded(128, {.tp = 2, .pp = 8, .ep = 8, .etp = 1});
  const TrainingShape training = shape(4096, 256);
  const MemoryBreakdown peak = peak_memory_per_gpu(model, config, training, {});
  for (std::int64_t rank = 0; rank < 8; ++rank)
    EXPECT_LE(memory_per_gpu(model, config, training, {}, rank).total_bytes(), peak.total_bytes());
  EXPECT_EQ(peak.pp_rank, 0);
  double sum = 0;
  for (const auto& [name, bytes] : memory_terms(peak))
    sum += bytes;
  EXPECT_DOUBLE_EQ(sum, peak.total_bytes());
  EXPECT_THROW(memory_per_gpu(model, config, training, {}, 8), std::invalid_argument);
  EXPECT_THROW(memory_per_gpu(model, config, training, {}, 0, 0.5), std::invalid_argument);
}

// The runtime allowance counts the NCCL communicators that carry tensors: the folding plan below
// has TP, DP×CP, PP, EP and EDP (ETP is 1); a single GPU has none.
TEST(MemoryModel, RuntimeAllowanceCountsDataCommunicators) {
  const ModelSpec model = load_model("mixtral-8x22b");
  const ParallelConfig config = folded(128, {.tp = 2, .pp = 8, .ep = 8, .etp = 1});
  const MemoryBreakdown plan = memory_per_gpu(model, config, shape(4096, 256), {}, 0);
  EXPECT_EQ(plan.communicators, 5);
  const MemoryBreakdown alone =
      memory_per_gpu(small_dense_gpt(), folded(1, {}), shape(2048, 1), {}, 0);
  EXPECT_EQ(alone.communicators, 0);
  EXPECT_DOUBLE_EQ(plan.other_bytes - alone.other_bytes, (2272.0 + 4 * 672) * 1024 * 1024);
}

// ---- (d) sanity against the paper's runs -------------------------------------------------------

// The paper's folding plan for Mixtral-8x22B on 128 H100s (TP2 PP8 EP8 ETP1, mbs 1, seq 4096,
// GBS 256) ran, so it fits 80 GB with or without selective recompute.
TEST(MemoryModel, MixtralFoldingPlanFitsOnH100) {
  const double hbm_bytes = load_cluster("dgx-h100").gpu.hbm_bytes;
  ASSERT_DOUBLE_EQ(hbm_bytes, 80e9);
  const ModelSpec model = load_model("mixtral-8x22b");
  const ParallelConfig config = folded(128, {.tp = 2, .pp = 8, .ep = 8, .etp = 1});
  for (const Recompute recompute : {Recompute::none, Recompute::selective}) {
    const MemoryBreakdown peak =
        peak_memory_per_gpu(model, config, shape(4096, 256), with_recompute(recompute));
    EXPECT_LT(peak.total_bytes(), hbm_bytes) << to_string(recompute);
    EXPECT_GT(peak.total_bytes(), 0.5 * hbm_bytes) << to_string(recompute);
  }
}

// Llama3-8x70B with TP1 PP1 EP8 on 256 GPUs keeps 1/8 of 451 B expert parameters on each GPU:
// 338 GB of bf16 weights and fp32 gradients alone.
TEST(MemoryModel, Llama3MoeWithoutTensorOrPipelineParallelismDoesNotFit) {
  const ModelSpec model = load_model("llama3-8x70b");
  const ParallelConfig config = folded(256, {.ep = 8, .etp = 1});
  const MemoryBreakdown peak =
      peak_memory_per_gpu(model, config, shape(4096, 256), with_recompute(Recompute::selective));
  EXPECT_GT(peak.total_bytes(), load_cluster("dgx-h100").gpu.hbm_bytes);
  EXPECT_GT(peak.weights_bytes + peak.gradients_bytes, 300e9);
}

} // namespace
} // namespace foldplan
