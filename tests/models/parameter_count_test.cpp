#include "models/parameter_count.hpp"

#include <gtest/gtest.h>

#include "models/vocab_padding.hpp"

namespace foldplan {
namespace {

// h 256, 4 layers (the first dense), 8 heads of 32 in 2 query groups, dense FFN 1024,
// 8 experts of FFN 512 with top-2, vocabulary 1000, SwiGLU, RMSNorm, untied.
ModelSpec small_moe() {
  ModelSpec model;
  model.name = "small-moe";
  model.num_layers = 4;
  model.hidden_size = 256;
  model.ffn_hidden_size = 1024;
  model.num_attention_heads = 8;
  model.num_query_groups = 2;
  model.kv_channels = 32;
  model.vocab_size = 1000;
  model.moe.num_experts = 8;
  model.moe.ffn_hidden_size = 512;
  model.moe.router_topk = 2;
  model.moe.first_k_dense_layers = 1;
  return model;
}

TEST(ParameterCount, SmallMoeModelByHand) {
  const ModelSpec model = small_moe();
  // Q and output 2·256·(8·32) = 131072; K and V 2·256·(2·32) = 32768.
  EXPECT_EQ(attention_parameters(model), 163840);
  EXPECT_EQ(layer_norm_parameters(model), 512);
  EXPECT_EQ(dense_mlp_parameters(model), 3 * 256 * 1024);
  EXPECT_EQ(routed_expert_parameters(model), 3 * 256 * 512);
  EXPECT_EQ(router_parameters(model), 256 * 8);
  EXPECT_EQ(shared_expert_parameters(model), 0);
  EXPECT_EQ(embedding_parameters(model), 2 * 256 * 1000);

  const LayerParameters dense = decoder_layer_parameters(model, 0);
  EXPECT_EQ(dense.total(), 163840 + 512 + 786432);
  EXPECT_EQ(dense.active(), dense.total());
  EXPECT_EQ(dense.routed_experts, 0);

  const LayerParameters moe = decoder_layer_parameters(model, 1);
  EXPECT_EQ(moe.dense_mlp, 0);
  EXPECT_EQ(moe.routed_experts, 8 * 393216);
  EXPECT_EQ(moe.routed_experts_per_token, 2 * 393216);
  EXPECT_EQ(moe.total(), 163840 + 512 + 3145728 + 2048);
  EXPECT_EQ(moe.active(), 163840 + 512 + 786432 + 2048);

  // 950784 (dense layer) + 3·3312128 (MoE layers) + 512000 (embedding, output) + 256 (final norm).
  EXPECT_EQ(total_parameters(model), 11399424);
  // 950784 + 3·952832 + 512000 + 256.
  EXPECT_EQ(active_parameters(model), 4321536);
}

TEST(ParameterCount, SharedExpertsAndTiedEmbeddings) {
  ModelSpec model = small_moe();
  model.moe.shared_expert_intermediate_size = 640;
  model.untie_embeddings_and_output_weights = false;
  const std::int64_t shared = 3 * 256 * 640;
  EXPECT_EQ(shared_expert_parameters(model), shared);
  EXPECT_EQ(embedding_parameters(model), 256 * 1000);
  EXPECT_EQ(decoder_layer_parameters(model, 2).shared_experts, shared);
  EXPECT_EQ(decoder_layer_parameters(model, 0).shared_experts, 0);
  EXPECT_EQ(total_parameters(model), 11399424 + 3 * shared - 256 * 1000);
  EXPECT_EQ(active_parameters(model), 4321536 + 3 * shared - 256 * 1000);
}

TEST(ParameterCount, MultiLatentAttentionByHand) {
  ModelSpec model = small_moe();
  model.num_query_groups = 8;
  model.mla = MlaSpec{.q_lora_rank = 0,
                      .kv_lora_rank = 64,
                      .qk_head_dim = 32,
                      .qk_pos_emb_head_dim = 16,
                      .v_head_dim = 32};
  // q 256·8·48 = 98304; kv 64·(256 + 8·64 + 1) = 49216; RoPE key 256·16 = 4096;
  // output 8·32·256 = 65536.
  EXPECT_EQ(attention_parameters(model), 217152);

  model.mla->q_lora_rank = 128;
  model.normalization = Normalization::layernorm;
  // q 128·(256 + 384 + 2) = 82176; kv 64·(256 + 512 + 2) = 49280; 4096; 65536.
  EXPECT_EQ(attention_parameters(model), 201088);
}

TEST(ParameterCount, Gpt3ByHand) {
  const ModelSpec model = load_model("gpt3-175b");
  const std::int64_t h = 12288;
  // A layer: attention 4h², GeLU MLP 2·h·4h, two LayerNorms of 2h.
  const std::int64_t layer = 4 * h * h + 8 * h * h + 4 * h;
  EXPECT_EQ(decoder_layer_parameters(model, 0).total(), layer);
  // Tied embedding h·V and the final LayerNorm 2h.
  EXPECT_EQ(total_parameters(model), 96 * layer + h * 50257 + 2 * h);
  EXPECT_EQ(total_parameters(model), 174568476672);
}

TEST(ParameterCount, DeepSeekV3AttentionAndLayersByHand) {
  const ModelSpec model = load_model("deepseek-v3");
  // q 1536·(7168 + 128·192 + 1) = 48760320; kv 512·(7168 + 128·256 + 1) = 20447744;
  // RoPE key 7168·64 = 458752; output 128·128·7168 = 117440512.
  EXPECT_EQ(attention_parameters(model), 187107328);
  EXPECT_EQ(decoder_layer_parameters(model, 2).dense_mlp, 3LL * 7168 * 18432);
  const LayerParameters moe = decoder_layer_parameters(model, 3);
  EXPECT_EQ(moe.routed_experts, 256LL * 3 * 7168 * 2048);
  EXPECT_EQ(moe.shared_experts, 3LL * 7168 * 2048);
  EXPECT_EQ(moe.router, 7168LL * 256);

  // The MTP layer is an MoE layer (as the last decoder layer) plus enorm, hnorm, the final norm
  // and eh_proj 2h·h.
  const LayerParameters mtp = mtp_layer_parameters(model);
  EXPECT_EQ(mtp.total(), moe.total() + 3 * 7168 + 2LL * 7168 * 7168);
  EXPECT_EQ(total_parameters(model, MtpLayers::included), total_parameters(model) + mtp.total());
  EXPECT_EQ(active_parameters(model, MtpLayers::included), active_parameters(model) + mtp.active());
}

TEST(ParameterCount, PiecesAddUpToTheTotal) {
  for (const EmbeddedFile& preset : model_presets()) {
    SCOPED_TRACE(std::string(preset.name));
    const ModelSpec model = load_model(std::string(preset.name));
    std::int64_t sum = embedding_table_parameters(model, model.vocab_size) *
                           (model.untie_embeddings_and_output_weights ? 2 : 1) +
                       norm_parameters(model);
    for (std::int64_t layer = 0; layer < model.num_layers; ++layer) {
      const bool is_moe = model.is_moe_layer(layer);
      sum += attention_parameters(model) + layer_norm_parameters(model);
      sum += is_moe ? model.moe.num_experts * routed_expert_parameters(model) +
                          shared_expert_parameters(model) + router_parameters(model)
                    : dense_mlp_parameters(model);
    }
    EXPECT_EQ(sum, total_parameters(model));
    if (!model.is_moe()) {
      EXPECT_EQ(active_parameters(model), total_parameters(model));
    } else {
      EXPECT_LT(active_parameters(model), total_parameters(model));
    }
  }
}

TEST(ParameterCount, PaddedEmbeddingTableIsWhatMegatronAllocates) {
  const ModelSpec model = load_model("gpt3-175b");
  EXPECT_EQ(embedding_table_parameters(model, padded_vocab_size(model.vocab_size, 8)),
            12288LL * 51200);
}

struct Published {
  const char* preset;
  double total;
  double active; // 0: not checked (dense)
};

// Published sizes: model cards and papers (Mixtral of Experts; Qwen2 technical report; DeepSeek-V3
// technical report, main model without the MTP module; Llama 3 model card; GPT-3 paper).
TEST(ParameterCount, WithinTwoPercentOfPublishedSizes) {
  const std::vector<Published> published = {
      {"mixtral-8x7b", 46.7e9, 12.9e9}, {"mixtral-8x22b", 141e9, 39e9},
      {"qwen2-57b-a14b", 57e9, 14e9},   {"deepseek-v3", 671e9, 37e9},
      {"qwen3-235b-a22b", 235e9, 22e9}, {"llama3-70b", 70.6e9, 0},
      {"llama3-405b", 405e9, 0},        {"gpt3-175b", 175e9, 0},
      {"llama3-8b", 8.03e9, 0},
  };
  for (const Published& model_size : published) {
    SCOPED_TRACE(model_size.preset);
    const ModelSpec model = load_model(model_size.preset);
    EXPECT_NEAR(static_cast<double>(total_parameters(model)) / model_size.total, 1.0, 0.02);
    if (model_size.active > 0) {
      EXPECT_NEAR(static_cast<double>(active_parameters(model)) / model_size.active, 1.0, 0.02);
    }
  }
}

} // namespace
} // namespace foldplan
