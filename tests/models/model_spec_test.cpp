#include "models/model_spec.hpp"

#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "core/file_io.hpp"

namespace foldplan {
namespace {

using nlohmann::json;

// The InputError message that `read` throws, or "" if it does not throw.
template <typename Read> std::string error_of(Read&& read) {
  try {
    read();
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}

// A small valid MoE model in canonical form.
json small_moe_json() {
  return {{"name", "small-moe"},
          {"num_layers", 4},
          {"hidden_size", 256},
          {"ffn_hidden_size", 1024},
          {"num_attention_heads", 8},
          {"num_query_groups", 2},
          {"kv_channels", 32},
          {"vocab_size", 1000},
          {"activation", "swiglu"},
          {"normalization", "rmsnorm"},
          {"untie_embeddings_and_output_weights", true},
          {"mtp_num_layers", 0},
          {"moe",
           {{"num_experts", 8},
            {"moe_ffn_hidden_size", 512},
            {"moe_router_topk", 2},
            {"moe_shared_expert_intermediate_size", 0},
            {"first_k_dense_layers", 1},
            {"moe_layer_freq", 1}}}};
}

json small_mla_json() {
  json model = small_moe_json();
  model["num_query_groups"] = 8;
  model["mla"] = {{"q_lora_rank", 0},
                  {"kv_lora_rank", 64},
                  {"qk_head_dim", 32},
                  {"qk_pos_emb_head_dim", 16},
                  {"v_head_dim", 32}};
  return model;
}

std::string error_reading(const json& model) {
  return error_of([&] { model_from_json(model); });
}

TEST(ModelSpec, ReadsEveryField) {
  const ModelSpec model = model_from_json(small_moe_json());
  EXPECT_EQ(model.name, "small-moe");
  EXPECT_EQ(model.num_layers, 4);
  EXPECT_EQ(model.hidden_size, 256);
  EXPECT_EQ(model.ffn_hidden_size, 1024);
  EXPECT_EQ(model.num_attention_heads, 8);
  EXPECT_EQ(model.num_query_groups, 2);
  EXPECT_EQ(model.kv_channels, 32);
  EXPECT_EQ(model.vocab_size, 1000);
  EXPECT_EQ(model.activation, Activation::swiglu);
  EXPECT_EQ(model.normalization, Normalization::rmsnorm);
  EXPECT_TRUE(model.untie_embeddings_and_output_weights);
  EXPECT_FALSE(model.mla.has_value());
  EXPECT_EQ(model.moe.num_experts, 8);
  EXPECT_EQ(model.moe.ffn_hidden_size, 512);
  EXPECT_EQ(model.moe.router_topk, 2);
  EXPECT_EQ(model.moe.first_k_dense_layers, 1);
  EXPECT_EQ(model.num_moe_layers(), 3);
  EXPECT_EQ(model.num_dense_layers(), 1);
  EXPECT_FALSE(model.is_moe_layer(0));
  EXPECT_TRUE(model.is_moe_layer(1));
}

TEST(ModelSpec, OptionalKeysTakeMegatronDefaults) {
  const json minimal = {{"name", "dense"},
                        {"num_layers", 2},
                        {"hidden_size", 96},
                        {"ffn_hidden_size", 384},
                        {"num_attention_heads", 12},
                        {"vocab_size", 500},
                        {"activation", "gelu"},
                        {"normalization", "layernorm"},
                        {"untie_embeddings_and_output_weights", false}};
  const ModelSpec model = model_from_json(minimal);
  EXPECT_EQ(model.num_query_groups, 12);
  EXPECT_EQ(model.kv_channels, 8);
  EXPECT_EQ(model.mtp_num_layers, 0);
  EXPECT_FALSE(model.is_moe());
  EXPECT_EQ(model.num_dense_layers(), 2);

  json moe = small_moe_json();
  moe["moe"] = {{"num_experts", 4}, {"moe_router_topk", 1}};
  const ModelSpec defaulted = model_from_json(moe);
  EXPECT_EQ(defaulted.moe.ffn_hidden_size, 1024); // ffn_hidden_size, as Megatron
  EXPECT_EQ(defaulted.moe.shared_expert_intermediate_size, 0);
  EXPECT_EQ(defaulted.num_moe_layers(), 4);

  json mla = small_mla_json();
  mla.erase("num_query_groups");
  mla["mla"] = json::object();
  EXPECT_EQ(model_from_json(mla).mla, MlaSpec{});
}

TEST(ModelSpec, LayerFrequencyAndPatternChooseTheMoeLayers) {
  json every_other = small_moe_json();
  every_other["num_layers"] = 6;
  every_other["moe"]["first_k_dense_layers"] = 0;
  every_other["moe"]["moe_layer_freq"] = 2;
  const ModelSpec alternating = model_from_json(every_other);
  EXPECT_EQ(alternating.num_moe_layers(), 3);
  EXPECT_TRUE(alternating.is_moe_layer(0));
  EXPECT_FALSE(alternating.is_moe_layer(1));
  EXPECT_TRUE(alternating.is_moe_layer(4));
  EXPECT_FALSE(alternating.is_moe_layer(5));

  json listed = small_moe_json();
  listed["moe"].erase("first_k_dense_layers");
  listed["moe"].erase("moe_layer_freq");
  listed["moe"]["moe_layer_pattern"] = {0, 1, 1, 0};
  const ModelSpec patterned = model_from_json(listed);
  EXPECT_EQ(patterned.moe.layer_pattern, (std::vector<bool>{false, true, true, false}));
  EXPECT_EQ(patterned.num_moe_layers(), 2);
  EXPECT_FALSE(patterned.is_moe_layer(3));
  EXPECT_EQ(model_to_json(patterned), listed);
}

// The constant-time counts the search uses for models of thousands of layers agree with asking
// is_moe_layer of every layer, for every range, in both forms of the layer rule.
TEST(ModelSpec, MoeLayerCountsOfARangeMatchLayerByLayer) {
  std::vector<ModelSpec> models;
  for (const auto& [first_dense, frequency] :
       std::vector<std::pair<int, int>>{{0, 1}, {0, 2}, {1, 1}, {3, 2}, {2, 3}, {0, 7}}) {
    json spec = small_moe_json();
    spec["num_layers"] = 11;
    spec["moe"]["first_k_dense_layers"] = first_dense;
    spec["moe"]["moe_layer_freq"] = frequency;
    models.push_back(model_from_json(spec));
  }
  json listed = small_moe_json();
  listed["moe"].erase("first_k_dense_layers");
  listed["moe"].erase("moe_layer_freq");
  listed["moe"]["moe_layer_pattern"] = {0, 1, 1, 0};
  models.push_back(model_from_json(listed));
  for (const ModelSpec& model : models) {
    std::int64_t first_moe = -1, first_dense = -1;
    for (std::int64_t layer = model.num_layers - 1; layer >= 0; --layer)
      (model.is_moe_layer(layer) ? first_moe : first_dense) = layer;
    EXPECT_EQ(model.first_moe_layer(), first_moe) << model_to_json(model);
    EXPECT_EQ(model.first_dense_layer(), first_dense) << model_to_json(model);
    for (std::int64_t first = 0; first <= model.num_layers; ++first) {
      for (std::int64_t end = first; end <= model.num_layers + 2; ++end) {
        std::int64_t expected = 0;
        for (std::int64_t layer = first; layer < end; ++layer)
          expected += model.is_moe_layer(layer) ? 1 : 0;
        EXPECT_EQ(model.num_moe_layers_in(first, end), expected)
            << "[" << first << ", " << end << ") of " << model_to_json(model);
      }
    }
  }
}

TEST(ModelSpec, EveryPresetRoundTripsExactly) {
  ASSERT_GE(model_presets().size(), 10u);
  for (const EmbeddedFile& preset : model_presets()) {
    SCOPED_TRACE(std::string(preset.name));
    const json text = parse_json(std::string(preset.text), std::string(preset.name));
    const ModelSpec model = model_from_json(text);
    EXPECT_EQ(model.name, preset.name);
    EXPECT_EQ(model_to_json(model), text);
    EXPECT_EQ(model_from_json(model_to_json(model)), model);
    EXPECT_EQ(load_model(std::string(preset.name)), model);
  }
}

TEST(ModelSpec, SpecsBuiltInCodeRoundTrip) {
  for (const json& source : {small_moe_json(), small_mla_json()}) {
    ModelSpec model = model_from_json(source);
    model.mtp_num_layers = 2;
    model.activation = Activation::gelu;
    model.normalization = Normalization::layernorm;
    model.untie_embeddings_and_output_weights = false;
    EXPECT_EQ(model_from_json(model_to_json(model)), model);
  }
}

TEST(ModelSpec, PresetsCarryThePublishedShapes) {
  const ModelSpec deepseek = load_model("deepseek-v3");
  EXPECT_EQ(deepseek.num_dense_layers(), 3);
  EXPECT_EQ(deepseek.num_moe_layers(), 58);
  EXPECT_EQ(deepseek.mtp_num_layers, 1);
  ASSERT_TRUE(deepseek.mla.has_value());
  EXPECT_EQ(deepseek.mla->q_lora_rank, 1536);

  const ModelSpec qwen2 = load_model("qwen2-57b-a14b");
  EXPECT_EQ(qwen2.moe.num_experts, 64);
  EXPECT_EQ(qwen2.moe.router_topk, 8);
  EXPECT_EQ(qwen2.moe.ffn_hidden_size, 2560);
  EXPECT_EQ(qwen2.moe.shared_expert_intermediate_size, 20480);

  const ModelSpec gpt3 = load_model("gpt3-175b");
  EXPECT_EQ(gpt3.activation, Activation::gelu);
  EXPECT_EQ(gpt3.normalization, Normalization::layernorm);
  EXPECT_FALSE(gpt3.untie_embeddings_and_output_weights);
  EXPECT_FALSE(gpt3.is_moe());
}

struct BadInput {
  std::string description;
  std::function<void(json&)> spoil;
  std::string expected_error;
};

TEST(ModelSpec, EachBrokenRuleIsAnInputErrorNamingTheField) {
  const std::vector<BadInput> cases = {
      {"negative layers", [](json& m) { m["num_layers"] = -3; },
       "model.num_layers: -3 is not a positive integer"},
      {"zero hidden", [](json& m) { m["hidden_size"] = 0; },
       "model.hidden_size: 0 is not a positive integer"},
      {"zero ffn", [](json& m) { m["ffn_hidden_size"] = 0; },
       "model.ffn_hidden_size: 0 is not a positive integer"},
      {"zero vocab", [](json& m) { m["vocab_size"] = 0; },
       "model.vocab_size: 0 is not a positive integer"},
      {"zero kv channels", [](json& m) { m["kv_channels"] = 0; },
       "model.kv_channels: 0 is not a positive integer"},
      {"negative mtp", [](json& m) { m["mtp_num_layers"] = -1; },
       "model.mtp_num_layers: -1 is negative"},
      {"empty name", [](json& m) { m["name"] = ""; }, "model.name: \"\" is empty"},
      {"groups do not divide heads", [](json& m) { m["num_query_groups"] = 3; },
       "model.num_query_groups: 3 does not divide num_attention_heads 8"},
      {"fractional heads", [](json& m) { m["num_attention_heads"] = 8.5; },
       "model.num_attention_heads: 8.5 is not an integer"},
      {"string layers", [](json& m) { m["num_layers"] = "four"; },
       "model.num_layers: expected an integer, got string \"four\""},
      {"boolean as string", [](json& m) { m["untie_embeddings_and_output_weights"] = "yes"; },
       "model.untie_embeddings_and_output_weights: expected true or false, got string \"yes\""},
      {"unknown activation", [](json& m) { m["activation"] = "relu"; },
       "model.activation: \"relu\" is not one of swiglu, gelu"},
      {"unknown normalization", [](json& m) { m["normalization"] = "batchnorm"; },
       "model.normalization: \"batchnorm\" is not one of rmsnorm, layernorm"},
      {"missing activation", [](json& m) { m.erase("activation"); },
       "model.activation: is required but missing"},
      {"missing hidden", [](json& m) { m.erase("hidden_size"); },
       "model.hidden_size: is required but missing"},
      {"unknown key", [](json& m) { m["num_layer"] = 4; },
       "model.num_layer: unknown key (check its spelling, or remove it)"},
      {"moe not an object", [](json& m) { m["moe"] = 8; },
       "model.moe: expected an object, got integer 8"},
      {"zero experts", [](json& m) { m["moe"]["num_experts"] = 0; },
       "model.moe.num_experts: 0 is not a positive integer (a dense model omits \"moe\")"},
      {"top-k above experts", [](json& m) { m["moe"]["moe_router_topk"] = 9; },
       "model.moe.moe_router_topk: 9 is more than num_experts 8"},
      {"zero top-k", [](json& m) { m["moe"]["moe_router_topk"] = 0; },
       "model.moe.moe_router_topk: 0 is not a positive integer"},
      {"missing top-k", [](json& m) { m["moe"].erase("moe_router_topk"); },
       "model.moe.moe_router_topk: is required but missing"},
      {"zero expert ffn", [](json& m) { m["moe"]["moe_ffn_hidden_size"] = 0; },
       "model.moe.moe_ffn_hidden_size: 0 is not a positive integer"},
      {"negative shared", [](json& m) { m["moe"]["moe_shared_expert_intermediate_size"] = -2; },
       "model.moe.moe_shared_expert_intermediate_size: -2 is negative"},
      {"zero frequency", [](json& m) { m["moe"]["moe_layer_freq"] = 0; },
       "model.moe.moe_layer_freq: 0 is not a positive integer"},
      {"all layers dense", [](json& m) { m["moe"]["first_k_dense_layers"] = 4; },
       "model.moe.first_k_dense_layers: 4 leaves no MoE layer among num_layers 4"},
      {"unknown moe key", [](json& m) { m["moe"]["topk"] = 2; },
       "model.moe.topk: unknown key (check its spelling, or remove it)"},
      {"pattern too short",
       [](json& m) {
         m["moe"].erase("first_k_dense_layers");
         m["moe"].erase("moe_layer_freq");
         m["moe"]["moe_layer_pattern"] = {1, 1, 1};
       },
       "model.moe.moe_layer_pattern: has 3 entries but num_layers is 4"},
      {"pattern without MoE",
       [](json& m) {
         m["moe"].erase("first_k_dense_layers");
         m["moe"].erase("moe_layer_freq");
         m["moe"]["moe_layer_pattern"] = {0, 0, 0, 0};
       },
       "model.moe.moe_layer_pattern: has no 1, so no layer is MoE (a dense model omits \"moe\")"},
      {"pattern entry not 0 or 1",
       [](json& m) {
         m["moe"].erase("first_k_dense_layers");
         m["moe"].erase("moe_layer_freq");
         m["moe"]["moe_layer_pattern"] = {0, 1, 2, 1};
       },
       "model.moe.moe_layer_pattern[2]: 2 is not 0 (dense) or 1 (MoE)"},
      {"pattern and frequency",
       [](json& m) {
         m["moe"]["moe_layer_pattern"] = {1, 1, 1, 1};
       },
       "model.moe.moe_layer_pattern: cannot be combined with first_k_dense_layers; give one of "
       "them"},
      {"MLA with GQA",
       [](json& m) {
         m["mla"] = json::object();
         m["num_query_groups"] = 2;
       },
       "model.num_query_groups: 2 query groups (GQA) cannot be combined with \"mla\"; multi-latent "
       "attention has num_attention_heads 8 groups"},
      {"MLA zero rank",
       [](json& m) {
         m.erase("num_query_groups");
         m["mla"] = {{"kv_lora_rank", 0}};
       },
       "model.mla.kv_lora_rank: 0 is not a positive integer"},
      {"MLA negative q rank",
       [](json& m) {
         m.erase("num_query_groups");
         m["mla"] = {{"q_lora_rank", -1}};
       },
       "model.mla.q_lora_rank: -1 is negative"},
      {"unknown mla key",
       [](json& m) {
         m.erase("num_query_groups");
         m["mla"] = {{"rope_dim", 64}};
       },
       "model.mla.rope_dim: unknown key (check its spelling, or remove it)"},
      {"head dimension needs kv_channels",
       [](json& m) {
         m.erase("kv_channels");
         m["hidden_size"] = 100;
       },
       "model.kv_channels: is required because hidden_size 100 is not a multiple of "
       "num_attention_heads 8"},
      {"absurd size", [](json& m) { m["moe"]["num_experts"] = 4000000000000LL; },
       "model: about 6.29e+18 parameters is more than the 1e+15 foldplan supports; check the "
       "sizes"},
  };
  for (const BadInput& bad : cases) {
    SCOPED_TRACE(bad.description);
    json model = small_moe_json();
    bad.spoil(model);
    EXPECT_EQ(error_reading(model), bad.expected_error);
  }
}

TEST(ModelSpec, NotAnObjectIsAnInputError) {
  EXPECT_EQ(error_of([] { model_from_json(json::array(), "plan.model"); }),
            "plan.model: expected an object, got array […]");
}

TEST(ModelSpec, ValidateModelChecksSpecsBuiltInCode) {
  ModelSpec model = model_from_json(small_moe_json());
  EXPECT_NO_THROW(validate_model(model));
  model.moe.layer_pattern = {true, true};
  EXPECT_EQ(error_of([&] { validate_model(model, "spec"); }),
            "spec.moe.moe_layer_pattern: has 2 entries but num_layers is 4");
  model.moe.layer_pattern = {true, true, true, true};
  EXPECT_EQ(error_of([&] { validate_model(model, "spec"); }),
            "spec.moe.moe_layer_pattern: cannot be combined with first_k_dense_layers or "
            "moe_layer_freq");
}

TEST(ModelSpec, UnknownPresetSuggestsTheClosestName) {
  EXPECT_EQ(error_of([] { load_model("mixtral8x22b"); }),
            "--model: unknown model 'mixtral8x22b'; did you mean 'mixtral-8x22b'?");
  const std::string unrelated = error_of([] { load_model("bert", "plan.model"); });
  EXPECT_EQ(unrelated.rfind("plan.model: unknown model 'bert'; presets are ", 0), 0u) << unrelated;
  EXPECT_NE(unrelated.find("deepseek-v3"), std::string::npos);
}

TEST(ModelSpec, LoadsAUsersFileAndNamesItsBadField) {
  const auto directory = std::filesystem::temp_directory_path() / "foldplan_test_models";
  std::filesystem::create_directories(directory);
  const std::string good_path = (directory / "good.json").string();
  const std::string bad_path = (directory / "bad.json").string();
  json bad = small_moe_json();
  bad["moe"]["moe_router_topk"] = 16;
  std::ofstream(good_path) << small_moe_json().dump();
  std::ofstream(bad_path) << bad.dump();
  EXPECT_EQ(load_model(good_path), model_from_json(small_moe_json()));
  EXPECT_EQ(error_of([&] { load_model(bad_path); }),
            "model.moe.moe_router_topk: 16 is more than num_experts 8");
  std::filesystem::remove_all(directory);
}

} // namespace
} // namespace foldplan
