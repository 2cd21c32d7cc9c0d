// Parameter counts, per piece, per layer and for the whole model.
#include "models/parameter_count.hpp"

namespace foldplan {
namespace {

// Megatron's gated_linear_multiplier (3/2 for SwiGLU) times the 2 matrices of an MLP.
std::int64_t mlp_matrices(const ModelSpec& model) {
  return model.activation == Activation::swiglu ? 3 : 2;
}

// Megatron's norm_size: RMSNorm has a scale per channel, LayerNorm a scale and a bias.
std::int64_t norm_weights_per_channel(const ModelSpec& model) {
  return model.normalization == Normalization::rmsnorm ? 1 : 2;
}

// MTP's enorm, hnorm and final_layernorm.
constexpr std::int64_t kMtpExtraNorms = 3;

} // namespace

std::int64_t norm_parameters(const ModelSpec& model) {
  return norm_weights_per_channel(model) * model.hidden_size;
}

std::int64_t layer_norm_parameters(const ModelSpec& model) {
  return 2 * norm_parameters(model);
}

std::int64_t attention_parameters(const ModelSpec& model) {
  const std::int64_t h = model.hidden_size;
  const std::int64_t heads = model.num_attention_heads;
  if (!model.mla) {
    // theoretical_memory_usage.py, MHA/GQA: Q and output h·q each, K and V h·d·groups each.
    const std::int64_t query_size = model.kv_channels * heads;
    const std::int64_t key_value_size = model.kv_channels * model.num_query_groups;
    return 2 * h * query_size + 2 * h * key_value_size;
  }
  // theoretical_memory_usage.py, MLA: q (direct, or low-rank down/up with a norm on the rank),
  // kv low-rank down/up with its norm, the shared RoPE key, and the output projection.
  const MlaSpec& mla = *model.mla;
  const std::int64_t norm_weights = norm_weights_per_channel(model);
  const std::int64_t query_head_dim = mla.qk_head_dim + mla.qk_pos_emb_head_dim;
  const std::int64_t query = mla.q_lora_rank == 0
                                 ? h * heads * query_head_dim
                                 : mla.q_lora_rank * (h + heads * query_head_dim + norm_weights);
  const std::int64_t key_value =
      mla.kv_lora_rank * (h + heads * (mla.qk_head_dim + mla.v_head_dim) + norm_weights);
  const std::int64_t rope_key = h * mla.qk_pos_emb_head_dim;
  const std::int64_t output = heads * mla.v_head_dim * h;
  return query + key_value + rope_key + output;
}

std::int64_t dense_mlp_parameters(const ModelSpec& model) {
  return mlp_matrices(model) * model.hidden_size * model.ffn_hidden_size;
}

std::int64_t routed_expert_parameters(const ModelSpec& model) {
  if (!model.is_moe())
    return 0;
  return mlp_matrices(model) * model.hidden_size * model.moe.ffn_hidden_size;
}

std::int64_t shared_expert_parameters(const ModelSpec& model) {
  return mlp_matrices(model) * model.hidden_size * model.moe.shared_expert_intermediate_size;
}

std::int64_t router_parameters(const ModelSpec& model) {
  return model.hidden_size * model.moe.num_experts;
}

std::int64_t embedding_table_parameters(const ModelSpec& model, std::int64_t vocab_rows) {
  return model.hidden_size * vocab_rows;
}

std::int64_t embedding_parameters(const ModelSpec& model) {
  const std::int64_t tables = model.untie_embeddings_and_output_weights ? 2 : 1;
  return tables * embedding_table_parameters(model, model.vocab_size);
}

std::int64_t mtp_projection_parameters(const ModelSpec& model) {
  return 2 * model.hidden_size * model.hidden_size;
}

std::int64_t LayerParameters::total() const {
  return attention + dense_mlp + routed_experts + shared_experts + router + norms + mtp_projection;
}

std::int64_t LayerParameters::active() const {
  return total() - routed_experts + routed_experts_per_token;
}

LayerParameters decoder_layer_parameters(const ModelSpec& model, std::int64_t layer) {
  LayerParameters parameters;
  parameters.attention = attention_parameters(model);
  parameters.norms = layer_norm_parameters(model);
  if (model.is_moe_layer(layer)) {
    const std::int64_t per_expert = routed_expert_parameters(model);
    parameters.routed_experts = per_expert * model.moe.num_experts;
    parameters.routed_experts_per_token = per_expert * model.moe.router_topk;
    parameters.shared_experts = shared_expert_parameters(model);
    parameters.router = router_parameters(model);
  } else {
    parameters.dense_mlp = dense_mlp_parameters(model);
  }
  return parameters;
}

LayerParameters mtp_layer_parameters(const ModelSpec& model) {
  // Megatron (training.py, theoretical_memory_usage.py): an MTP layer is MoE iff the last
  // decoder layer is.
  LayerParameters parameters = decoder_layer_parameters(model, model.num_layers - 1);
  parameters.norms += kMtpExtraNorms * norm_parameters(model);
  parameters.mtp_projection = mtp_projection_parameters(model);
  return parameters;
}

std::int64_t total_parameters(const ModelSpec& model, MtpLayers mtp) {
  std::int64_t total = norm_parameters(model) + embedding_parameters(model);
  for (std::int64_t layer = 0; layer < model.num_layers; ++layer) {
    total += decoder_layer_parameters(model, layer).total();
  }
  if (mtp == MtpLayers::included)
    total += model.mtp_num_layers * mtp_layer_parameters(model).total();
  return total;
}

std::int64_t active_parameters(const ModelSpec& model, MtpLayers mtp) {
  std::int64_t active = norm_parameters(model) + embedding_parameters(model);
  for (std::int64_t layer = 0; layer < model.num_layers; ++layer) {
    active += decoder_layer_parameters(model, layer).active();
  }
  if (mtp == MtpLayers::included) {
    active += model.mtp_num_layers * mtp_layer_parameters(model).active();
  }
  return active;
}

} // namespace foldplan
