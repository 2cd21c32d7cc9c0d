#include "models/model_flops.hpp"

#include <gtest/gtest.h>

namespace foldplan {
namespace {

// 2 layers, h 8, 2 heads of 4 (MHA), GeLU FFN 32, vocabulary 100, tied.
ModelSpec tiny_dense() {
  ModelSpec model;
  model.name = "tiny";
  model.num_layers = 2;
  model.hidden_size = 8;
  model.ffn_hidden_size = 32;
  model.num_attention_heads = 2;
  model.num_query_groups = 2;
  model.kv_channels = 4;
  model.vocab_size = 100;
  model.activation = Activation::gelu;
  model.normalization = Normalization::layernorm;
  model.untie_embeddings_and_output_weights = false;
  return model;
}

TEST(ModelFlops, TinyDenseModelByHand) {
  const ModelSpec model = tiny_dense();
  // Per token, 6 FLOPs per weight (forward, two backward GEMMs, 2 per multiply-add):
  //   MLP     6·h·(2·f)·L = 6·8·64·2                    = 6144
  //   QKV+out 6·(h·(q + 2·kv) + q·h)·L = 6·(192 + 64)·2  = 3072   (q = kv = 8)
  //   core    6·q·s·L = 6·8·16·2                         = 1536   (s = 16; causal ½ × 2 GEMMs)
  //   logits  6·h·V = 6·8·128                            = 6144   (V padded to 128)
  const MegatronFlops flops = megatron_flops_breakdown(model, 16, 1);
  EXPECT_DOUBLE_EQ(flops.mlp, 6144);
  EXPECT_DOUBLE_EQ(flops.attention_linear, 3072);
  EXPECT_DOUBLE_EQ(flops.attention_core, 1536);
  EXPECT_DOUBLE_EQ(flops.mtp_projection, 0);
  EXPECT_DOUBLE_EQ(flops.logits, 6144);
  EXPECT_DOUBLE_EQ(megatron_flops_per_token(model, 16, 1), 16896);
  EXPECT_DOUBLE_EQ(megatron_flops_per_step(model, 16, 1, 1), 16 * 16896);
  EXPECT_DOUBLE_EQ(megatron_flops_per_step(model, 16, 3, 1), 3 * 16 * 16896);
  // TP 2 pads the vocabulary to 256: only the logits change, 6·8·256 = 12288.
  EXPECT_DOUBLE_EQ(megatron_flops_per_token(model, 16, 2), 16896 - 6144 + 12288);
}

TEST(ModelFlops, SwigluAndGqaByHand) {
  ModelSpec model = tiny_dense();
  model.activation = Activation::swiglu;
  model.num_query_groups = 1;
  const MegatronFlops flops = megatron_flops_breakdown(model, 16, 1);
  EXPECT_DOUBLE_EQ(flops.mlp, 6.0 * 8 * (3 * 32) * 2);
  // kv = 4 (one group): 6·(8·(8 + 8) + 8·8)·2.
  EXPECT_DOUBLE_EQ(flops.attention_linear, 6.0 * (8 * 16 + 64) * 2);
  EXPECT_DOUBLE_EQ(flops.attention_core, 1536); // GQA shares K and V, not the score GEMMs
}

// The paper's Mixtral-8x22B at seq 4096 and TP 2 reports 2.4217e11 FLOPs per token:
//   MLP     6·6144·(3·16384·2)·56                = 202937204736
//   QKV+out 6·(6144·(6144 + 2·1024) + 6144²)·56  =  29595009024
//   core    6·6144·4096·56                       =   8455716864
//   logits  6·6144·32000 (32000 = 125·256)       =   1179648000
TEST(ModelFlops, Mixtral8x22bMatchesMegatron) {
  const ModelSpec model = load_model("mixtral-8x22b");
  const double per_token = megatron_flops_per_token(model, 4096, 2);
  EXPECT_NEAR(per_token / 2.4217e11, 1.0, 1e-3);
  EXPECT_DOUBLE_EQ(per_token, 242167578624.0);
  EXPECT_DOUBLE_EQ(megatron_flops_per_step(model, 4096, 256, 2), 256.0 * 4096 * per_token);
}

// DeepSeek-V3 at seq 4096, TP 1: 3 dense and 58 MoE layers, plus one MTP layer that counts as
// MoE (the last layer is MoE), so 59 MoE MLPs and 62 attention layers.
//   MLP     6·7168·(3·18432·3 + (3·2048·8 + 3·2048)·59)              = 147446562816
//   MLA     6·(1536·(7168 + 128·192 + 1) + 512·(7168 + 128·256 + 1)
//             + 7168·64 + 128·128·7168)·62 = 6·187107328·62           =  69603926016
//   core    6·(128·192/2 + 128·128/2)·4096·62                        =  31205621760
//   MTP     6·1·(3·7168 + 2·7168²)                                    =    616691712
//   logits  6·7168·129280·2 (main and MTP heads)                      =  11120148480
TEST(ModelFlops, DeepSeekV3MlaAndMtpByHand) {
  const ModelSpec model = load_model("deepseek-v3");
  const MegatronFlops flops = megatron_flops_breakdown(model, 4096, 1);
  EXPECT_DOUBLE_EQ(flops.mlp, 147446562816.0);
  EXPECT_DOUBLE_EQ(flops.attention_linear, 69603926016.0);
  EXPECT_DOUBLE_EQ(flops.attention_core, 31205621760.0);
  EXPECT_DOUBLE_EQ(flops.mtp_projection, 616691712.0);
  EXPECT_DOUBLE_EQ(flops.logits, 11120148480.0);
  EXPECT_DOUBLE_EQ(flops.total(), 259992950784.0);
}

TEST(ModelFlops, MtpLayerFollowsTheLastLayersKind) {
  ModelSpec model = tiny_dense();
  model.moe.num_experts = 4;
  model.moe.ffn_hidden_size = 16;
  model.moe.router_topk = 2;
  model.moe.layer_pattern = {true, false};
  model.mtp_num_layers = 1;
  // Last layer dense: the MTP layer adds a dense MLP (2·32), the MoE layer has 2 experts of 2·16.
  EXPECT_DOUBLE_EQ(megatron_flops_breakdown(model, 16, 1).mlp, 6.0 * 8 * (64 * 2 + 64 * 1));
  model.moe.layer_pattern = {false, true};
  EXPECT_DOUBLE_EQ(megatron_flops_breakdown(model, 16, 1).mlp, 6.0 * 8 * (64 * 1 + 64 * 2));
  model.moe.ffn_hidden_size = 8;
  EXPECT_DOUBLE_EQ(megatron_flops_breakdown(model, 16, 1).mlp, 6.0 * 8 * (64 * 1 + 32 * 2));
}

TEST(ModelFlops, DoublingTheLayersRoughlyDoublesTheFlops) {
  ModelSpec model = load_model("llama3-70b");
  const double base = megatron_flops_per_token(model, 4096, 1);
  model.num_layers *= 2;
  const double doubled = megatron_flops_per_token(model, 4096, 1);
  // Everything but the logits doubles.
  EXPECT_GT(doubled / base, 1.95);
  EXPECT_LT(doubled / base, 2.0);
}

TEST(ModelFlops, CausalAttentionGrowsWithTheSequenceAndNothingElseDoes) {
  const ModelSpec model = load_model("qwen2-57b-a14b");
  const MegatronFlops short_sequence = megatron_flops_breakdown(model, 2048, 1);
  const MegatronFlops long_sequence = megatron_flops_breakdown(model, 8192, 1);
  EXPECT_DOUBLE_EQ(long_sequence.attention_core, 4 * short_sequence.attention_core);
  EXPECT_DOUBLE_EQ(long_sequence.mlp, short_sequence.mlp);
  EXPECT_DOUBLE_EQ(long_sequence.attention_linear, short_sequence.attention_linear);
  EXPECT_GT(long_sequence.total(), short_sequence.total());
}

TEST(ModelFlops, RoutedExpertsScaleWithTopK) {
  ModelSpec model = load_model("mixtral-8x22b-g8t8");
  const double top8 = megatron_flops_breakdown(model, 4096, 1).mlp;
  model.moe.router_topk = 4;
  EXPECT_DOUBLE_EQ(megatron_flops_breakdown(model, 4096, 1).mlp, top8 / 2);
  model.moe.num_experts = 128; // more experts at the same top-k cost nothing
  EXPECT_DOUBLE_EQ(megatron_flops_breakdown(model, 4096, 1).mlp, top8 / 2);
}

} // namespace
} // namespace foldplan
