// Megatron's model FLOPs, term by term.
#include "models/model_flops.hpp"

#include <cassert>

#include "models/vocab_padding.hpp"

namespace foldplan {
namespace {

// Forward, backward data-gradient and backward weight-gradient GEMMs, 2 FLOPs per multiply-add.
constexpr double kFlopsPerWeightPerToken = 3.0 * 2.0;

// Token-linear attention FLOPs over kFlopsPerWeightPerToken: the projection weights.
double attention_projection_weights(const ModelSpec& model) {
  const double h = static_cast<double>(model.hidden_size);
  const double heads = static_cast<double>(model.num_attention_heads);
  if (!model.mla) {
    const double query_size = static_cast<double>(model.kv_channels) * heads;
    const double key_value_size =
        static_cast<double>(model.kv_channels) * static_cast<double>(model.num_query_groups);
    return h * (query_size + 2.0 * key_value_size) + query_size * h;
  }
  // MLA counts one weight per rank for each low-rank norm, whatever the norm kind.
  const MlaSpec& mla = *model.mla;
  const double query_head_dim = static_cast<double>(mla.qk_head_dim + mla.qk_pos_emb_head_dim);
  const double q_lora_rank = static_cast<double>(mla.q_lora_rank);
  const double query = mla.q_lora_rank == 0 ? h * heads * query_head_dim
                                            : q_lora_rank * (h + heads * query_head_dim + 1.0);
  const double key_value =
      static_cast<double>(mla.kv_lora_rank) *
      (h + heads * static_cast<double>(mla.qk_head_dim + mla.v_head_dim) + 1.0);
  const double rope_key = h * static_cast<double>(mla.qk_pos_emb_head_dim);
  const double output = heads * static_cast<double>(mla.v_head_dim) * h;
  return query + key_value + rope_key + output;
}

// Core attention FLOPs per token per unit of sequence length over kFlopsPerWeightPerToken:
// QKᵀ and softmax·V, each halved by the causal mask.
double attention_core_width(const ModelSpec& model) {
  const double heads = static_cast<double>(model.num_attention_heads);
  if (!model.mla) {
    const double query_size = static_cast<double>(model.kv_channels) * heads;
    return query_size / 2.0 + query_size / 2.0;
  }
  const MlaSpec& mla = *model.mla;
  return heads * static_cast<double>(mla.qk_head_dim + mla.qk_pos_emb_head_dim) / 2.0 +
         heads * static_cast<double>(mla.v_head_dim) / 2.0;
}

} // namespace

MegatronFlops megatron_flops_breakdown(const ModelSpec& model, std::int64_t seq_length,
                                       std::int64_t tensor_parallel_size) {
  assert(seq_length > 0 && tensor_parallel_size > 0);
  const double h = static_cast<double>(model.hidden_size);
  const double mlp_matrices = model.activation == Activation::swiglu ? 3.0 : 2.0;
  const double mtp_layers = static_cast<double>(model.mtp_num_layers);

  // training.py: MTP layers count as MoE or dense like the last decoder layer.
  double moe_layers = static_cast<double>(model.num_moe_layers());
  double dense_layers = static_cast<double>(model.num_dense_layers());
  if (model.is_moe_layer(model.num_layers - 1)) {
    moe_layers += mtp_layers;
  } else {
    dense_layers += mtp_layers;
  }
  const double attention_layers = static_cast<double>(model.num_layers) + mtp_layers;

  const double dense_mlp_width = mlp_matrices * static_cast<double>(model.ffn_hidden_size);
  const double routed_width = mlp_matrices * static_cast<double>(model.moe.ffn_hidden_size) *
                              static_cast<double>(model.moe.router_topk);
  const double shared_width =
      mlp_matrices * static_cast<double>(model.moe.shared_expert_intermediate_size);
  const double padded_vocab =
      static_cast<double>(padded_vocab_size(model.vocab_size, tensor_parallel_size));

  // training.py transformer_flops, with T = tokens and Q = T·s for full-length sequences.
  MegatronFlops flops;
  flops.mlp = kFlopsPerWeightPerToken * h *
              (dense_mlp_width * dense_layers + (routed_width + shared_width) * moe_layers);
  flops.attention_linear =
      kFlopsPerWeightPerToken * attention_projection_weights(model) * attention_layers;
  flops.attention_core = kFlopsPerWeightPerToken * attention_core_width(model) *
                         static_cast<double>(seq_length) * attention_layers;
  flops.mtp_projection = kFlopsPerWeightPerToken * mtp_layers * (3.0 * h + 2.0 * h * h);
  flops.logits = kFlopsPerWeightPerToken * h * padded_vocab * (mtp_layers + 1.0);
  return flops;
}

double megatron_flops_per_token(const ModelSpec& model, std::int64_t seq_length,
                                std::int64_t tensor_parallel_size) {
  return megatron_flops_breakdown(model, seq_length, tensor_parallel_size).total();
}

double megatron_flops_per_step(const ModelSpec& model, std::int64_t seq_length,
                               std::int64_t global_batch_size, std::int64_t tensor_parallel_size) {
  assert(global_batch_size > 0);
  const double tokens = static_cast<double>(global_batch_size) * static_cast<double>(seq_length);
  return tokens * megatron_flops_per_token(model, seq_length, tensor_parallel_size);
}

} // namespace foldplan
