#include "models/model_template.hpp"

#include "models/model_spec.hpp"

namespace foldplan {

nlohmann::json model_template() {
  // A real preset (Mixtral 8x7B), so the numbers are consistent as they stand.
  nlohmann::json spec = model_to_json(load_model("mixtral-8x7b"));
  spec["name"] = "my-model";
  spec[kCommentsKey] = {
      {"name", "what tables and reports call the model"},
      {"num_layers", "decoder layers (Megatron --num-layers)"},
      {"hidden_size", "model width h (--hidden-size)"},
      {"ffn_hidden_size", "width of the dense MLP layers (--ffn-hidden-size)"},
      {"num_attention_heads", "query heads (--num-attention-heads)"},
      {"num_query_groups", "key/value heads for GQA (--num-query-groups); = heads for MHA"},
      {"kv_channels", "head dimension (--kv-channels); optional, default hidden/heads"},
      {"vocab_size", "unpadded vocabulary; padded to a multiple of 128·TP as Megatron does"},
      {"activation", "swiglu or gelu"},
      {"normalization", "rmsnorm or layernorm"},
      {"untie_embeddings_and_output_weights", "true: separate output layer (Megatron flag)"},
      {"mtp_num_layers", "multi-token prediction heads (DeepSeek-V3: 1); optional, default 0"},
      {"mla", "optional object for multi-latent attention: q_lora_rank, kv_lora_rank, "
              "qk_head_dim, qk_pos_emb_head_dim, v_head_dim"},
      {"moe", "omit for a dense model"},
      {"moe.num_experts", "routed experts (--num-experts)"},
      {"moe.moe_ffn_hidden_size", "width of one expert (--moe-ffn-hidden-size)"},
      {"moe.moe_router_topk", "experts per token (--moe-router-topk)"},
      {"moe.moe_shared_expert_intermediate_size", "total width of the shared experts, 0 for none"},
      {"moe.first_k_dense_layers", "leading dense layers before the first MoE layer"},
      {"moe.moe_layer_freq", "every n-th layer after those is MoE (or give moe_layer_pattern: "
                             "[0|1, …] with one entry per layer)"},
  };
  return spec;
}

} // namespace foldplan
