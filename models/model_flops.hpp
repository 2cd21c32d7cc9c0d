// Model FLOPs exactly as Megatron-LM reports them (megatron/training/training.py,
// num_floating_point_operations, transformer_flops): forward plus two backward GEMMs for every
// linear layer, top-k routed and shared experts, GQA or MLA attention with the causal mask counted
// as half of s², multi-token prediction, and logits over the padded vocabulary. Router, norms,
// recompute and capacity padding are not counted. Every sequence is full length (BSHD).
#pragma once

#include <cstdint>

#include "models/model_spec.hpp"

namespace foldplan {

// FLOPs per token of one training step, by the terms of Megatron's formula.
struct MegatronFlops {
  double mlp = 0;              // dense MLPs, the top-k routed experts, shared experts
  double attention_linear = 0; // QKV (or MLA) and output projections
  double attention_core = 0;   // QKᵀ and softmax·V; grows linearly with the sequence length
  double mtp_projection = 0;   // MTP layers' norms and eh_proj
  double logits = 0;           // output layer of the main model and of each MTP layer

  double total() const { return mlp + attention_linear + attention_core + mtp_projection + logits; }
};

// `tensor_parallel_size` matters only through the vocabulary padding (to 128·TP).
MegatronFlops megatron_flops_breakdown(const ModelSpec& model, std::int64_t seq_length,
                                       std::int64_t tensor_parallel_size);
double megatron_flops_per_token(const ModelSpec& model, std::int64_t seq_length,
                                std::int64_t tensor_parallel_size);
// num_floating_point_operations(args, global_batch_size): the FLOPs of one global batch.
double megatron_flops_per_step(const ModelSpec& model, std::int64_t seq_length,
                               std::int64_t global_batch_size, std::int64_t tensor_parallel_size);

} // namespace foldplan
