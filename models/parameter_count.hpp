// Parameter counts of a ModelSpec, piece by piece, as Megatron-LM's theoretical memory estimator
// counts them (megatron/training/theoretical_memory_usage.py, compute_weight_and_optimizer_memory),
// plus the router (h·E) that the estimator leaves out. Linear layers have no bias; position
// embeddings are not counted (RoPE has none). The pieces are per layer so that the memory model
// can sum what each pipeline stage holds and shard each piece its own way.
#pragma once

#include <cstdint>

#include "models/model_spec.hpp"

namespace foldplan {

// One norm's weights: h for RMSNorm, 2h (scale and bias) for LayerNorm.
std::int64_t norm_parameters(const ModelSpec& model);
// The pre-attention and pre-MLP norms of one decoder layer.
std::int64_t layer_norm_parameters(const ModelSpec& model);
// One layer's self-attention: QKV (or MLA's low-rank projections and their norms) and output
// projection.
std::int64_t attention_parameters(const ModelSpec& model);
// One dense layer's MLP: (3 if SwiGLU else 2)·h·ffn_hidden_size.
std::int64_t dense_mlp_parameters(const ModelSpec& model);
// One routed expert: (3 if SwiGLU else 2)·h·moe_ffn_hidden_size. 0 for a dense model.
std::int64_t routed_expert_parameters(const ModelSpec& model);
// All shared experts of one MoE layer.
std::int64_t shared_expert_parameters(const ModelSpec& model);
// One MoE layer's router, h·E.
std::int64_t router_parameters(const ModelSpec& model);
// One vocabulary table (input embedding or output layer) of `vocab_rows` rows: h·vocab_rows.
// Totals below use the model's own vocab_size; Megatron allocates
// padded_vocab_size(vocab_size, TP) rows (models/vocab_padding.hpp).
std::int64_t embedding_table_parameters(const ModelSpec& model, std::int64_t vocab_rows);
// The embedding tables: one if tied with the output layer, two if untied.
std::int64_t embedding_parameters(const ModelSpec& model);
// An MTP layer's projection of [embedding, hidden] back to the hidden size (eh_proj), 2h·h.
std::int64_t mtp_projection_parameters(const ModelSpec& model);

// One decoder or MTP layer, split by how the distributed optimizer shards it: attention,
// dense_mlp, shared_experts and mtp_projection over TP; routed_experts over ETP·EP; router and
// norms replicated.
struct LayerParameters {
  std::int64_t attention = 0;
  std::int64_t dense_mlp = 0;                // dense layers only
  std::int64_t routed_experts = 0;           // all routed experts of an MoE layer
  std::int64_t routed_experts_per_token = 0; // the top-k of them one token is routed to
  std::int64_t shared_experts = 0;
  std::int64_t router = 0;
  std::int64_t norms = 0;          // the layer's norms (an MTP layer has three more)
  std::int64_t mtp_projection = 0; // MTP layers only

  std::int64_t total() const;
  // Everything except the routed experts a token is not sent to.
  std::int64_t active() const;
  bool operator==(const LayerParameters&) const = default;
};

// Decoder layer `layer` (0-based), dense or MoE as the model's layer pattern says.
LayerParameters decoder_layer_parameters(const ModelSpec& model, std::int64_t layer);
// One multi-token-prediction layer (Megatron multi_token_prediction.py): enorm, hnorm, eh_proj,
// a decoder layer of the same kind as the last one, and a final norm. It shares the embedding
// and output layer with the main model.
LayerParameters mtp_layer_parameters(const ModelSpec& model);

enum class MtpLayers { excluded, included };

// The whole model: decoder layers, final norm, embedding tables (and the MTP layers if included).
std::int64_t total_parameters(const ModelSpec& model, MtpLayers mtp = MtpLayers::excluded);
// Parameters one token passes through: all but the routed experts outside its top-k.
std::int64_t active_parameters(const ModelSpec& model, MtpLayers mtp = MtpLayers::excluded);

} // namespace foldplan
