// ModelSpec: the architecture hyper-parameters of a dense or Mixture-of-Experts transformer, in
// Megatron-LM's vocabulary (the JSON keys are Megatron's argument names with '_' for '-').
//
// JSON form (model_to_json writes every key; model_from_json accepts the optional ones absent):
//   "name"                                 string, required
//   "num_layers", "hidden_size", "ffn_hidden_size", "num_attention_heads", "vocab_size"
//                                          positive integers, required
//   "num_query_groups"                     optional, default num_attention_heads (no GQA)
//   "kv_channels"                          optional, default hidden_size / num_attention_heads
//   "activation"                           "swiglu" | "gelu", required
//   "normalization"                        "rmsnorm" | "layernorm", required
//   "untie_embeddings_and_output_weights"  boolean, required
//   "mtp_num_layers"                       optional, default 0
// The three required choices are the ones where Megatron's defaults (gelu, layernorm, tied) and
// today's models disagree, so a file must say which it means.
//   "mla": { "q_lora_rank" (0: none), "kv_lora_rank", "qk_head_dim", "qk_pos_emb_head_dim",
//            "v_head_dim" }                optional; absent keys take MlaSpec's defaults
//   "moe": { "num_experts", "moe_router_topk"                    required, positive
//            "moe_ffn_hidden_size"                               default ffn_hidden_size
//            "moe_shared_expert_intermediate_size"               default 0
//            and either "first_k_dense_layers" (default 0) with "moe_layer_freq" (default 1),
//            or "moe_layer_pattern": [0|1, …] of num_layers entries }
//                                          optional; absent for a dense model
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/embedded_file.hpp"

namespace foldplan {

enum class Activation { swiglu, gelu };
enum class Normalization { rmsnorm, layernorm };

// Multi-latent attention (DeepSeek-V2/V3): Megatron's --multi-latent-attention family of flags.
struct MlaSpec {
  std::int64_t q_lora_rank = 0; // 0: queries are projected directly, without a low-rank step
  std::int64_t kv_lora_rank = 512;
  std::int64_t qk_head_dim = 128;
  std::int64_t qk_pos_emb_head_dim = 64;
  std::int64_t v_head_dim = 128;

  bool operator==(const MlaSpec&) const = default;
};

// The routed (and shared) experts. num_experts == 0 means a dense model.
struct MoeSpec {
  std::int64_t num_experts = 0;
  std::int64_t ffn_hidden_size = 0; // --moe-ffn-hidden-size, per expert
  std::int64_t router_topk = 0;     // --moe-router-topk
  // --moe-shared-expert-intermediate-size: the total size of all shared experts (0: none).
  std::int64_t shared_expert_intermediate_size = 0;
  // Which layers are MoE. Layer i (0-based) is MoE iff i >= first_k_dense_layers and
  // (i - first_k_dense_layers) % layer_freq == 0 — or, when layer_pattern is non-empty, iff
  // layer_pattern[i] is true (Megatron's list form of --moe-layer-freq).
  std::int64_t first_k_dense_layers = 0;
  std::int64_t layer_freq = 1;
  std::vector<bool> layer_pattern;

  bool operator==(const MoeSpec&) const = default;
};

struct ModelSpec {
  std::string name;
  std::int64_t num_layers = 0;
  std::int64_t hidden_size = 0;
  std::int64_t ffn_hidden_size = 0; // of the dense MLP layers
  std::int64_t num_attention_heads = 0;
  std::int64_t num_query_groups = 0; // == num_attention_heads for MHA
  std::int64_t kv_channels = 0;      // head dimension
  std::int64_t vocab_size = 0;       // unpadded; padded to 128·TP as Megatron does
  Activation activation = Activation::swiglu;
  Normalization normalization = Normalization::rmsnorm;
  bool untie_embeddings_and_output_weights = true;
  std::int64_t mtp_num_layers = 0; // multi-token prediction heads (DeepSeek-V3: 1)
  std::optional<MlaSpec> mla;
  MoeSpec moe;

  bool is_moe() const { return moe.num_experts > 0; }
  bool is_moe_layer(std::int64_t layer) const;
  std::int64_t num_moe_layers() const;
  // MoE layers among [first, end); constant time for the layer_freq form, so that per-stage
  // counts of a model with thousands of layers stay cheap inside the search.
  std::int64_t num_moe_layers_in(std::int64_t first, std::int64_t end) const;
  // The first MoE (dense) layer, or -1 when there is none.
  std::int64_t first_moe_layer() const;
  std::int64_t first_dense_layer() const;
  std::int64_t num_dense_layers() const { return num_layers - num_moe_layers(); }

  bool operator==(const ModelSpec&) const = default;
};

// Checks every rule a model must satisfy (positive sizes, heads divisible by query groups, top-k
// within the expert count, a layer pattern of num_layers entries with at least one MoE layer, MLA
// without GQA, a size whose parameter count fits the exact 64-bit counts); throws InputError naming
// `path`.field with the JSON key. For specs built in code; model_from_json calls it.
void validate_model(const ModelSpec& model, const std::string& path = "model");

// Reads and validates a model; every problem is an InputError naming `path`.field.
ModelSpec model_from_json(const nlohmann::json& json, const std::string& path = "model");
nlohmann::json model_to_json(const ModelSpec& model);

// The presets compiled from models/presets/*.json.
std::span<const EmbeddedFile> model_presets();
// A preset name ("mixtral-8x22b") or a path to a JSON file; `field` names the flag in errors.
ModelSpec load_model(const std::string& name_or_path, const std::string& field = "--model");

} // namespace foldplan
