// ParallelConfig: deriving DP and EDP from the world size, the rules a configuration must keep
// for a model and batch (each with Megatron's source), and the strict JSON form.
#include "parallel/parallel_config.hpp"

#include <array>
#include <span>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "core/json_object.hpp"
#include "models/model_spec.hpp"

namespace foldplan {
namespace {

std::optional<ConfigViolation> violation(std::string field, std::string rule, std::string reason) {
  return ConfigViolation{std::move(field), std::move(rule), std::move(reason)};
}

void require_positive_flag(std::int64_t value, const char* flag) {
  if (value <= 0)
    throw InputError(flag, fmt::format("{} is not a positive integer", value));
}

// The flag blamed for a product that does not divide the world: the first factor, in rank order,
// whose inclusion makes the running product stop dividing it.
using FlagSize = std::pair<const char*, std::int64_t>;

const char* first_non_dividing_flag(std::int64_t world_size, std::span<const FlagSize> factors) {
  std::int64_t product = 1;
  for (const auto& [flag, size] : factors) {
    product *= size;
    if (world_size % product != 0)
      return flag;
  }
  return factors.back().first;
}

// The first size that is not positive, named `section`.<name>.
std::optional<ConfigViolation> first_non_positive(std::string_view section,
                                                  std::span<const FlagSize> sizes) {
  for (const auto& [name, size] : sizes) {
    if (size <= 0) {
      return violation(fmt::format("{}.{}", section, name),
                       fmt::format("{} is not a positive integer", size), "size not positive");
    }
  }
  return std::nullopt;
}

std::optional<ConfigViolation> positive_sizes_violation(const ParallelConfig& config) {
  const std::array<FlagSize, 8> sizes = {{{"tp", config.tp},
                                          {"cp", config.cp},
                                          {"dp", config.dp},
                                          {"pp", config.pp},
                                          {"vpp", config.vpp},
                                          {"etp", config.etp},
                                          {"ep", config.ep},
                                          {"edp", config.edp}}};
  return first_non_positive("parallel", sizes);
}

std::optional<ConfigViolation> positive_training_violation(const TrainingShape& training) {
  const std::array<FlagSize, 3> sizes = {{{"seq_length", training.seq_length},
                                          {"global_batch_size", training.global_batch_size},
                                          {"micro_batch_size", training.micro_batch_size}}};
  return first_non_positive("training", sizes);
}

// Megatron parallel_state.initialize_model_parallel: DP = world // (TP·PP·CP) and
// EDP = world // (ETP·EP·PP), each a RuntimeError when it does not divide.
std::optional<ConfigViolation> world_size_violation(const ParallelConfig& c,
                                                    std::int64_t world_size) {
  if (c.tp * c.cp * c.dp * c.pp != world_size) {
    return violation("parallel.dp",
                     fmt::format("TP·CP·DP·PP = {}·{}·{}·{} = {} does not equal the world size {}",
                                 c.tp, c.cp, c.dp, c.pp, c.tp * c.cp * c.dp * c.pp, world_size),
                     "attention sizes do not match world");
  }
  if (c.etp * c.ep * c.edp * c.pp != world_size) {
    return violation(
        "parallel.edp",
        fmt::format("ETP·EP·EDP·PP = {}·{}·{}·{} = {} does not equal the world size {}", c.etp,
                    c.ep, c.edp, c.pp, c.etp * c.ep * c.edp * c.pp, world_size),
        "expert sizes do not match world");
  }
  return std::nullopt;
}

// Pre-folding Megatron (RankGenerator with independent_ep, before --expert-tensor-parallel-size):
// experts use the attention TP, and EP is carved out of DP ("data_parallel_size is not divisible
// by expert_model_parallel_size").
std::optional<ConfigViolation> no_folding_violation(const ParallelConfig& c) {
  if (c.etp != c.tp) {
    return violation("parallel.etp",
                     fmt::format("{} must equal TP {} without folding", c.etp, c.tp),
                     "etp differs from tp without folding");
  }
  if (c.dp % c.ep != 0) {
    return violation(
        "parallel.ep",
        fmt::format("{} does not divide DP {} (without folding EP is carved out of DP)", c.ep,
                    c.dp),
        "ep does not divide dp without folding");
  }
  return std::nullopt;
}

// Megatron arguments.validate_args and BaseMoELayer.__init__: num_experts % EP == 0; EP > 1 needs
// --num-experts.
std::optional<ConfigViolation> expert_count_violation(const ParallelConfig& c,
                                                      const ModelSpec& model) {
  if (!model.is_moe()) {
    if (c.ep != 1) {
      return violation("parallel.ep", fmt::format("{} needs a MoE model; the model is dense", c.ep),
                       "ep on a dense model");
    }
    return std::nullopt;
  }
  if (model.moe.num_experts % c.ep != 0) {
    return violation("parallel.ep",
                     fmt::format("{} does not divide num_experts {}", c.ep, model.moe.num_experts),
                     "ep does not divide experts");
  }
  return std::nullopt;
}

// Megatron TransformerConfig.__post_init__ (heads % TP) and attention.Attention.__init__: with
// num_query_groups >= TP the groups split over TP; with fewer groups each TP rank holds one group
// and heads / groups query heads.
std::optional<ConfigViolation> attention_heads_violation(const ParallelConfig& c,
                                                         const ModelSpec& model) {
  if (model.num_attention_heads % c.tp != 0) {
    return violation(
        "parallel.tp",
        fmt::format("{} does not divide num_attention_heads {}", c.tp, model.num_attention_heads),
        "tp does not divide heads");
  }
  // Multi-latent attention has no query groups; 0 means the spec left them unset (MHA).
  const std::int64_t groups = model.num_query_groups;
  if (model.mla || groups <= 0)
    return std::nullopt;
  if (groups >= c.tp && groups % c.tp != 0) {
    return violation("parallel.tp",
                     fmt::format("{} does not divide num_query_groups {}", c.tp, groups),
                     "tp does not divide query groups");
  }
  if (groups < c.tp && model.num_attention_heads % groups != 0) {
    return violation("parallel.tp",
                     fmt::format("num_query_groups {} is below TP {} and does not divide "
                                 "num_attention_heads {}",
                                 groups, c.tp, model.num_attention_heads),
                     "query groups below tp do not divide heads");
  }
  return std::nullopt;
}

// Megatron's divide() asserts in the MLP and MoE experts: dense FFN over TP, each routed expert's
// FFN over ETP, the shared experts' FFN over TP.
std::optional<ConfigViolation> hidden_sizes_violation(const ParallelConfig& c,
                                                      const ModelSpec& model) {
  if (model.num_dense_layers() > 0 && model.ffn_hidden_size % c.tp != 0) {
    return violation(
        "parallel.tp",
        fmt::format("{} does not divide ffn_hidden_size {}", c.tp, model.ffn_hidden_size),
        "tp does not divide ffn");
  }
  if (!model.is_moe())
    return std::nullopt;
  if (model.moe.ffn_hidden_size % c.etp != 0) {
    return violation(
        "parallel.etp",
        fmt::format("{} does not divide moe_ffn_hidden_size {}", c.etp, model.moe.ffn_hidden_size),
        "etp does not divide expert ffn");
  }
  if (model.moe.shared_expert_intermediate_size % c.tp != 0) {
    return violation("parallel.tp",
                     fmt::format("{} does not divide moe_shared_expert_intermediate_size {}", c.tp,
                                 model.moe.shared_expert_intermediate_size),
                     "tp does not divide shared expert ffn");
  }
  return std::nullopt;
}

// Megatron arguments.validate_args: seq_length % (2·CP) == 0 (load-balanced causal CP chunks).
std::optional<ConfigViolation> sequence_violation(const ParallelConfig& c,
                                                  const TrainingShape& training) {
  if (c.cp > 1 && training.seq_length % (2 * c.cp) != 0) {
    return violation(
        "parallel.cp",
        fmt::format("seq_length {} is not divisible by 2·CP = {}", training.seq_length, 2 * c.cp),
        "cp does not divide sequence");
  }
  return std::nullopt;
}

// Megatron parallel_state ("pipeline-model-parallel size should be greater than 1 with interleaved
// schedule") and the even layer split of transformer_block / pipeline_parallel_layer_layout:
// L % PP == 0 and, with VPP, L % (PP·VPP) == 0.
std::optional<ConfigViolation> pipeline_violation(const ParallelConfig& c, const ModelSpec& model) {
  if (c.vpp > 1 && c.pp == 1) {
    return violation(
        "parallel.vpp",
        fmt::format("{} needs PP > 1 (the interleaved schedule needs a pipeline)", c.vpp),
        "vpp without pp");
  }
  if (model.num_layers % c.pp != 0) {
    return violation("parallel.pp",
                     fmt::format("{} does not divide num_layers {}", c.pp, model.num_layers),
                     "pp does not divide layers");
  }
  if (model.num_layers % (c.pp * c.vpp) != 0) {
    return violation("parallel.vpp",
                     fmt::format("num_layers {} is not divisible by PP·VPP = {}·{} = {}",
                                 model.num_layers, c.pp, c.vpp, c.pp * c.vpp),
                     "pp·vpp does not divide layers");
  }
  return std::nullopt;
}

// Megatron num_microbatches_calculator: GBS % (mbs·DP) == 0, DP excluding CP. With VPP,
// schedules.forward_backward_pipelining_with_interleaving needs M % G ∈ {0} ∪ [PP, G) and G <= M;
// with the default group size G = PP that is M % PP == 0.
std::optional<ConfigViolation> batch_violation(const ParallelConfig& c,
                                               const TrainingShape& training) {
  const std::int64_t per_step = training.micro_batch_size * c.dp;
  if (training.global_batch_size % per_step != 0) {
    return violation("training.global_batch_size",
                     fmt::format("{} is not divisible by micro_batch_size·DP = {}·{} = {}",
                                 training.global_batch_size, training.micro_batch_size, c.dp,
                                 per_step),
                     "batch does not divide over dp");
  }
  const std::int64_t micro_batches = training.global_batch_size / per_step;
  if (c.vpp > 1 && micro_batches % c.pp != 0) {
    return violation("parallel.vpp",
                     fmt::format("the interleaved schedule (VPP {}) needs the number of "
                                 "micro-batches {} to be a multiple of PP {}",
                                 c.vpp, micro_batches, c.pp),
                     "micro-batches not a multiple of pp with vpp");
  }
  return std::nullopt;
}

} // namespace

ParallelConfig make_parallel_config(std::int64_t world_size, const ParallelSizes& sizes,
                                    bool folding) {
  require_positive_flag(world_size, "--gpus");
  require_positive_flag(sizes.tp, "--tp");
  require_positive_flag(sizes.cp, "--cp");
  require_positive_flag(sizes.pp, "--pp");
  require_positive_flag(sizes.vpp, "--vpp");
  require_positive_flag(sizes.ep, "--ep");
  if (sizes.etp)
    require_positive_flag(*sizes.etp, "--etp");

  ParallelConfig config;
  config.tp = sizes.tp;
  config.cp = sizes.cp;
  config.pp = sizes.pp;
  config.vpp = sizes.vpp;
  config.ep = sizes.ep;
  // Megatron arguments: --expert-tensor-parallel-size None → TP. With folding we default to 1,
  // the README's recommendation for fine-grained MoE.
  config.etp = sizes.etp.value_or(folding ? 1 : sizes.tp);
  if (!folding && config.etp != config.tp) {
    throw InputError("--etp",
                     fmt::format("{} must equal TP {} without folding", config.etp, config.tp));
  }

  // Megatron parallel_state.initialize_model_parallel: DP = world // (TP·PP·CP).
  const std::int64_t attention_model_size = config.tp * config.cp * config.pp;
  if (world_size % attention_model_size != 0) {
    const std::array<FlagSize, 3> factors = {
        {{"--tp", config.tp}, {"--cp", config.cp}, {"--pp", config.pp}}};
    throw InputError(first_non_dividing_flag(world_size, factors),
                     fmt::format("world size {} is not divisible by TP·CP·PP = {}·{}·{} = {}",
                                 world_size, config.tp, config.cp, config.pp,
                                 attention_model_size));
  }
  config.dp = world_size / attention_model_size;

  // Megatron parallel_state.initialize_model_parallel: EDP = world // (ETP·EP·PP).
  const std::int64_t expert_model_size = config.etp * config.ep * config.pp;
  if (world_size % expert_model_size != 0) {
    const std::array<FlagSize, 3> factors = {
        {{"--etp", config.etp}, {"--ep", config.ep}, {"--pp", config.pp}}};
    throw InputError(first_non_dividing_flag(world_size, factors),
                     fmt::format("world size {} is not divisible by ETP·EP·PP = {}·{}·{} = {}",
                                 world_size, config.etp, config.ep, config.pp, expert_model_size));
  }
  config.edp = world_size / expert_model_size;

  if (!folding && config.dp % config.ep != 0) {
    throw InputError(
        "--ep", fmt::format("{} does not divide DP {} (without folding EP is carved out of DP)",
                            config.ep, config.dp));
  }
  if (config.vpp > 1 && config.pp == 1) {
    throw InputError("--vpp", fmt::format("{} needs PP > 1 (the interleaved schedule needs a "
                                          "pipeline)",
                                          config.vpp));
  }
  return config;
}

std::optional<ConfigViolation> find_violation(const ParallelConfig& config, const ModelSpec& model,
                                              const TrainingShape& training,
                                              std::int64_t world_size, bool folding) {
  if (auto found = positive_sizes_violation(config))
    return found;
  if (auto found = positive_training_violation(training))
    return found;
  if (auto found = world_size_violation(config, world_size))
    return found;
  if (!folding) {
    if (auto found = no_folding_violation(config))
      return found;
  }
  if (auto found = expert_count_violation(config, model))
    return found;
  if (auto found = attention_heads_violation(config, model))
    return found;
  if (auto found = hidden_sizes_violation(config, model))
    return found;
  if (auto found = sequence_violation(config, training))
    return found;
  if (auto found = pipeline_violation(config, model))
    return found;
  if (auto found = batch_violation(config, training))
    return found;
  return std::nullopt;
}

void validate_parallel_config(const ParallelConfig& config, const ModelSpec& model,
                              const TrainingShape& training, std::int64_t world_size,
                              bool folding) {
  if (auto found = find_violation(config, model, training, world_size, folding)) {
    throw InputError(found->field, found->rule);
  }
}

std::int64_t num_micro_batches(const ParallelConfig& config, const TrainingShape& training) {
  return training.global_batch_size / (training.micro_batch_size * config.dp);
}

ParallelConfig parallel_from_json(const nlohmann::json& json, const std::string& path) {
  JsonObject object(json, path);
  ParallelConfig config;
  config.tp = object.positive_integer("tp");
  config.cp = object.positive_integer("cp");
  config.dp = object.positive_integer("dp");
  config.pp = object.positive_integer("pp");
  config.vpp = object.positive_integer("vpp");
  config.etp = object.positive_integer("etp");
  config.ep = object.positive_integer("ep");
  config.edp = object.positive_integer("edp");
  object.reject_unknown_keys();
  return config;
}

nlohmann::json parallel_to_json(const ParallelConfig& config) {
  return {{"tp", config.tp},   {"cp", config.cp},   {"dp", config.dp}, {"pp", config.pp},
          {"vpp", config.vpp}, {"etp", config.etp}, {"ep", config.ep}, {"edp", config.edp}};
}

TrainingShape training_from_json(const nlohmann::json& json, const std::string& path) {
  JsonObject object(json, path);
  TrainingShape training;
  training.seq_length = object.positive_integer("seq_length");
  training.global_batch_size = object.positive_integer("global_batch_size");
  training.micro_batch_size = object.positive_integer("micro_batch_size");
  object.reject_unknown_keys();
  return training;
}

nlohmann::json training_to_json(const TrainingShape& training) {
  return {{"seq_length", training.seq_length},
          {"global_batch_size", training.global_batch_size},
          {"micro_batch_size", training.micro_batch_size}};
}

} // namespace foldplan
