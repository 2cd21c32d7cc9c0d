// Reading, validating and writing ModelSpec as JSON, and loading models by preset name or path.
#include "models/model_spec.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "core/json_object.hpp"
#include "core/named_source.hpp"

namespace foldplan {
namespace {

const std::vector<std::string> kActivations = {"swiglu", "gelu"};
const std::vector<std::string> kNormalizations = {"rmsnorm", "layernorm"};

// Counts of parameters are exact 64-bit integers. A model under this bound (hundreds of times the
// largest published ones) keeps every count and intermediate product far from overflow.
constexpr double kMaxParameters = 1e15;

std::string join_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

void require_positive(std::int64_t value, const std::string& field) {
  if (value <= 0)
    throw InputError(field, fmt::format("{} is not a positive integer", value));
}

void require_non_negative(std::int64_t value, const std::string& field) {
  if (value < 0)
    throw InputError(field, fmt::format("{} is negative", value));
}

// The parameter count in floating point, where absurd sizes cannot overflow; an estimate that
// ignores norms and routers, used only against kMaxParameters.
double parameter_magnitude(const ModelSpec& model) {
  const double h = static_cast<double>(model.hidden_size);
  const double heads = static_cast<double>(model.num_attention_heads);
  double attention = 2.0 * h * static_cast<double>(model.kv_channels) *
                     (heads + static_cast<double>(model.num_query_groups));
  if (model.mla) {
    const double qk = static_cast<double>(model.mla->qk_head_dim + model.mla->qk_pos_emb_head_dim);
    const double v = static_cast<double>(model.mla->v_head_dim);
    const double q_lora = static_cast<double>(model.mla->q_lora_rank);
    const double kv_lora = static_cast<double>(model.mla->kv_lora_rank);
    attention = (q_lora > 0 ? q_lora * (h + heads * qk) : h * heads * qk) +
                kv_lora * (h + heads * (qk + v)) + h * qk + heads * v * h;
  }
  const double mlp = 3.0 * h *
                     std::max(static_cast<double>(model.ffn_hidden_size),
                              static_cast<double>(model.moe.num_experts) *
                                      static_cast<double>(model.moe.ffn_hidden_size) +
                                  static_cast<double>(model.moe.shared_expert_intermediate_size));
  const double layers = static_cast<double>(model.num_layers + model.mtp_num_layers);
  return layers * (attention + mlp + 2.0 * h * h) + 2.0 * h * static_cast<double>(model.vocab_size);
}

void validate_mla(const MlaSpec& mla, const std::string& path) {
  require_non_negative(mla.q_lora_rank, join_path(path, "q_lora_rank"));
  require_positive(mla.kv_lora_rank, join_path(path, "kv_lora_rank"));
  require_positive(mla.qk_head_dim, join_path(path, "qk_head_dim"));
  require_positive(mla.qk_pos_emb_head_dim, join_path(path, "qk_pos_emb_head_dim"));
  require_positive(mla.v_head_dim, join_path(path, "v_head_dim"));
}

void validate_moe(const MoeSpec& moe, std::int64_t num_layers, const std::string& path) {
  require_positive(moe.num_experts, join_path(path, "num_experts"));
  require_positive(moe.ffn_hidden_size, join_path(path, "moe_ffn_hidden_size"));
  require_positive(moe.router_topk, join_path(path, "moe_router_topk"));
  if (moe.router_topk > moe.num_experts) {
    throw InputError(
        join_path(path, "moe_router_topk"),
        fmt::format("{} is more than num_experts {}", moe.router_topk, moe.num_experts));
  }
  require_non_negative(moe.shared_expert_intermediate_size,
                       join_path(path, "moe_shared_expert_intermediate_size"));
  if (!moe.layer_pattern.empty()) {
    const std::string field = join_path(path, "moe_layer_pattern");
    if (std::cmp_not_equal(moe.layer_pattern.size(), num_layers)) {
      throw InputError(field, fmt::format("has {} entries but num_layers is {}",
                                          moe.layer_pattern.size(), num_layers));
    }
    if (std::none_of(moe.layer_pattern.begin(), moe.layer_pattern.end(),
                     [](bool is_moe) { return is_moe; })) {
      throw InputError(field, "has no 1, so no layer is MoE (a dense model omits \"moe\")");
    }
    if (moe.first_k_dense_layers != 0 || moe.layer_freq != 1) {
      throw InputError(field, "cannot be combined with first_k_dense_layers or moe_layer_freq");
    }
    return;
  }
  require_positive(moe.layer_freq, join_path(path, "moe_layer_freq"));
  require_non_negative(moe.first_k_dense_layers, join_path(path, "first_k_dense_layers"));
  if (moe.first_k_dense_layers >= num_layers) {
    throw InputError(join_path(path, "first_k_dense_layers"),
                     fmt::format("{} leaves no MoE layer among num_layers {}",
                                 moe.first_k_dense_layers, num_layers));
  }
}

MlaSpec mla_from_json(JsonObject object) {
  const MlaSpec defaults;
  MlaSpec mla;
  mla.q_lora_rank = object.integer_or("q_lora_rank", defaults.q_lora_rank);
  mla.kv_lora_rank = object.integer_or("kv_lora_rank", defaults.kv_lora_rank);
  mla.qk_head_dim = object.integer_or("qk_head_dim", defaults.qk_head_dim);
  mla.qk_pos_emb_head_dim = object.integer_or("qk_pos_emb_head_dim", defaults.qk_pos_emb_head_dim);
  mla.v_head_dim = object.integer_or("v_head_dim", defaults.v_head_dim);
  object.reject_unknown_keys();
  return mla;
}

std::vector<bool> layer_pattern_from_json(JsonObject& object) {
  const std::string field = object.field("moe_layer_pattern");
  const std::vector<std::int64_t> entries = object.integer_list("moe_layer_pattern");
  std::vector<bool> pattern;
  pattern.reserve(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i] != 0 && entries[i] != 1) {
      throw InputError(fmt::format("{}[{}]", field, i),
                       fmt::format("{} is not 0 (dense) or 1 (MoE)", entries[i]));
    }
    pattern.push_back(entries[i] == 1);
  }
  return pattern;
}

MoeSpec moe_from_json(JsonObject object, std::int64_t ffn_hidden_size) {
  MoeSpec moe;
  moe.num_experts = object.integer("num_experts");
  if (moe.num_experts <= 0) {
    throw InputError(
        object.field("num_experts"),
        fmt::format("{} is not a positive integer (a dense model omits \"moe\")", moe.num_experts));
  }
  moe.ffn_hidden_size = object.integer_or("moe_ffn_hidden_size", ffn_hidden_size);
  moe.router_topk = object.integer("moe_router_topk");
  moe.shared_expert_intermediate_size = object.integer_or("moe_shared_expert_intermediate_size", 0);
  if (object.has("moe_layer_pattern")) {
    for (const char* key : {"first_k_dense_layers", "moe_layer_freq"}) {
      if (object.has(key)) {
        throw InputError(object.field("moe_layer_pattern"),
                         fmt::format("cannot be combined with {}; give one of them", key));
      }
    }
    moe.layer_pattern = layer_pattern_from_json(object);
  } else {
    moe.first_k_dense_layers = object.integer_or("first_k_dense_layers", 0);
    moe.layer_freq = object.integer_or("moe_layer_freq", 1);
  }
  object.reject_unknown_keys();
  return moe;
}

nlohmann::json mla_to_json(const MlaSpec& mla) {
  return {{"q_lora_rank", mla.q_lora_rank},
          {"kv_lora_rank", mla.kv_lora_rank},
          {"qk_head_dim", mla.qk_head_dim},
          {"qk_pos_emb_head_dim", mla.qk_pos_emb_head_dim},
          {"v_head_dim", mla.v_head_dim}};
}

nlohmann::json moe_to_json(const MoeSpec& moe) {
  nlohmann::json json = {
      {"num_experts", moe.num_experts},
      {"moe_ffn_hidden_size", moe.ffn_hidden_size},
      {"moe_router_topk", moe.router_topk},
      {"moe_shared_expert_intermediate_size", moe.shared_expert_intermediate_size}};
  if (moe.layer_pattern.empty()) {
    json["first_k_dense_layers"] = moe.first_k_dense_layers;
    json["moe_layer_freq"] = moe.layer_freq;
  } else {
    nlohmann::json pattern = nlohmann::json::array();
    for (const bool is_moe : moe.layer_pattern)
      pattern.push_back(is_moe ? 1 : 0);
    json["moe_layer_pattern"] = std::move(pattern);
  }
  return json;
}

} // namespace

bool ModelSpec::is_moe_layer(std::int64_t layer) const {
  if (!is_moe() || layer < 0 || layer >= num_layers)
    return false;
  if (!moe.layer_pattern.empty())
    return moe.layer_pattern[static_cast<std::size_t>(layer)];
  return layer >= moe.first_k_dense_layers &&
         (layer - moe.first_k_dense_layers) % moe.layer_freq == 0;
}

std::int64_t ModelSpec::num_moe_layers() const {
  return num_moe_layers_in(0, num_layers);
}

std::int64_t ModelSpec::num_moe_layers_in(std::int64_t first, std::int64_t end) const {
  end = std::min(end, num_layers);
  if (!is_moe() || first >= end)
    return 0;
  if (!moe.layer_pattern.empty()) {
    std::int64_t count = 0;
    for (std::int64_t layer = std::max<std::int64_t>(first, 0); layer < end; ++layer)
      count += is_moe_layer(layer) ? 1 : 0;
    return count;
  }
  // Layers k, k+f, k+2f, ...: those below `end` minus those below `first`.
  const auto below = [&](std::int64_t bound) {
    const std::int64_t span = bound - moe.first_k_dense_layers;
    return span <= 0 ? 0 : (span + moe.layer_freq - 1) / moe.layer_freq;
  };
  return below(end) - below(first);
}

std::int64_t ModelSpec::first_moe_layer() const {
  if (!is_moe())
    return -1;
  if (moe.layer_pattern.empty())
    return moe.first_k_dense_layers < num_layers ? moe.first_k_dense_layers : -1;
  for (std::int64_t layer = 0; layer < num_layers; ++layer) {
    if (is_moe_layer(layer))
      return layer;
  }
  return -1;
}

std::int64_t ModelSpec::first_dense_layer() const {
  if (!is_moe())
    return num_layers > 0 ? 0 : -1;
  if (moe.layer_pattern.empty()) {
    if (moe.first_k_dense_layers > 0)
      return 0;
    // Layer 0 is MoE; layer 1 is dense when the frequency skips it.
    return moe.layer_freq > 1 && num_layers > 1 ? 1 : -1;
  }
  for (std::int64_t layer = 0; layer < num_layers; ++layer) {
    if (!is_moe_layer(layer))
      return layer;
  }
  return -1;
}

void validate_model(const ModelSpec& model, const std::string& path) {
  if (model.name.empty())
    throw InputError(join_path(path, "name"), "\"\" is empty");
  require_positive(model.num_layers, join_path(path, "num_layers"));
  require_positive(model.hidden_size, join_path(path, "hidden_size"));
  require_positive(model.ffn_hidden_size, join_path(path, "ffn_hidden_size"));
  require_positive(model.num_attention_heads, join_path(path, "num_attention_heads"));
  require_positive(model.num_query_groups, join_path(path, "num_query_groups"));
  if (model.num_attention_heads % model.num_query_groups != 0) {
    throw InputError(join_path(path, "num_query_groups"),
                     fmt::format("{} does not divide num_attention_heads {}",
                                 model.num_query_groups, model.num_attention_heads));
  }
  require_positive(model.kv_channels, join_path(path, "kv_channels"));
  require_positive(model.vocab_size, join_path(path, "vocab_size"));
  require_non_negative(model.mtp_num_layers, join_path(path, "mtp_num_layers"));
  if (model.mla) {
    if (model.num_query_groups != model.num_attention_heads) {
      throw InputError(join_path(path, "num_query_groups"),
                       fmt::format("{} query groups (GQA) cannot be combined with \"mla\"; "
                                   "multi-latent attention has num_attention_heads {} groups",
                                   model.num_query_groups, model.num_attention_heads));
    }
    validate_mla(*model.mla, join_path(path, "mla"));
  }
  if (model.is_moe() || model.moe != MoeSpec{}) {
    validate_moe(model.moe, model.num_layers, join_path(path, "moe"));
  }
  const double magnitude = parameter_magnitude(model);
  if (magnitude > kMaxParameters) {
    throw InputError(path, fmt::format("about {:.3g} parameters is more than the {:.0g} foldplan "
                                       "supports; check the sizes",
                                       magnitude, kMaxParameters));
  }
}

ModelSpec model_from_json(const nlohmann::json& json, const std::string& path) {
  JsonObject object(json, path);
  ModelSpec model;
  model.name = object.string("name");
  model.num_layers = object.integer("num_layers");
  model.hidden_size = object.integer("hidden_size");
  model.ffn_hidden_size = object.integer("ffn_hidden_size");
  model.num_attention_heads = object.integer("num_attention_heads");
  model.num_query_groups = object.integer_or("num_query_groups", model.num_attention_heads);
  if (object.has("kv_channels")) {
    model.kv_channels = object.integer("kv_channels");
  } else if (model.num_attention_heads > 0) {
    if (model.hidden_size % model.num_attention_heads != 0) {
      throw InputError(object.field("kv_channels"),
                       fmt::format("is required because hidden_size {} is not a multiple of "
                                   "num_attention_heads {}",
                                   model.hidden_size, model.num_attention_heads));
    }
    model.kv_channels = model.hidden_size / model.num_attention_heads;
  }
  model.vocab_size = object.integer("vocab_size");
  model.activation =
      object.choice("activation", kActivations) == "swiglu" ? Activation::swiglu : Activation::gelu;
  model.normalization = object.choice("normalization", kNormalizations) == "rmsnorm"
                            ? Normalization::rmsnorm
                            : Normalization::layernorm;
  model.untie_embeddings_and_output_weights = object.boolean("untie_embeddings_and_output_weights");
  model.mtp_num_layers = object.integer_or("mtp_num_layers", 0);
  if (std::optional<JsonObject> mla = object.optional_object("mla")) {
    model.mla = mla_from_json(std::move(*mla));
  }
  if (std::optional<JsonObject> moe = object.optional_object("moe")) {
    model.moe = moe_from_json(std::move(*moe), model.ffn_hidden_size);
  }
  object.optional_value(kCommentsKey); // documentation only (the --template's comments)
  object.reject_unknown_keys();
  validate_model(model, path);
  return model;
}

nlohmann::json model_to_json(const ModelSpec& model) {
  nlohmann::json json = {
      {"name", model.name},
      {"num_layers", model.num_layers},
      {"hidden_size", model.hidden_size},
      {"ffn_hidden_size", model.ffn_hidden_size},
      {"num_attention_heads", model.num_attention_heads},
      {"num_query_groups", model.num_query_groups},
      {"kv_channels", model.kv_channels},
      {"vocab_size", model.vocab_size},
      {"activation", model.activation == Activation::swiglu ? "swiglu" : "gelu"},
      {"normalization", model.normalization == Normalization::rmsnorm ? "rmsnorm" : "layernorm"},
      {"untie_embeddings_and_output_weights", model.untie_embeddings_and_output_weights},
      {"mtp_num_layers", model.mtp_num_layers}};
  if (model.mla)
    json["mla"] = mla_to_json(*model.mla);
  if (model.is_moe())
    json["moe"] = moe_to_json(model.moe);
  return json;
}

ModelSpec load_model(const std::string& name_or_path, const std::string& field) {
  const NamedJson source = resolve_named_json(name_or_path, model_presets(), "model", field);
  return model_from_json(source.value, "model");
}

} // namespace foldplan
