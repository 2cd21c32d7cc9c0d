// Megatron-LM export of a plan: the flags in the groups a reader scans a launch script by, each
// with the Megatron rule that makes it necessary (megatron/training/arguments.py,
// megatron/core/transformer/transformer_config.py), and the script that launches them.
#include "planner/megatron_args.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "core/units.hpp"

namespace foldplan {
namespace {

// The synthetic run that closes the command: enough iterations for the step time to settle,
// logged every few with Megatron's own throughput (TFLOP/s per GPU, comparable with the MFU).
constexpr std::int64_t kBenchmarkIterations = 50;
constexpr std::int64_t kBenchmarkLogInterval = 10;
// Any positive learning rate does (Megatron's default is none): the run measures time.
constexpr const char* kBenchmarkLearningRate = "1e-4";
// The entry point for GPT-style decoders, MoE included, in Megatron-LM's root.
constexpr const char* kTrainingScript = "pretrain_gpt.py";

class FlagList {
public:
  void add(std::string name) { flags_.push_back({std::move(name), {}}); }
  void add(std::string name, std::string value) {
    flags_.push_back({std::move(name), {std::move(value)}});
  }
  void add(std::string name, std::int64_t value) { add(std::move(name), std::to_string(value)); }

  std::vector<MegatronFlag> take() && { return std::move(flags_); }

private:
  std::vector<MegatronFlag> flags_;
};

// Megatron parses the capacity factor as a float; "1.0" reads as one better than "1".
std::string decimal(double value) {
  const std::string shortest = fmt::format("{}", value);
  return shortest.find_first_of(".e") == std::string::npos ? shortest + ".0" : shortest;
}

// --moe-layer-freq (arguments.py moe_freq_type): an integer N makes layer i MoE iff i % N == 0;
// any other layout is a python list expression of num_layers 0/1 entries, written here as runs
// ("([0]*3+[1]*58)" for DeepSeek-V3's three dense layers). Nothing when every layer is MoE.
std::optional<std::string> moe_layer_freq(const ModelSpec& model) {
  if (model.num_moe_layers() == model.num_layers)
    return std::nullopt;
  if (model.moe.layer_pattern.empty() && model.moe.first_k_dense_layers == 0)
    return std::to_string(model.moe.layer_freq);
  std::string runs;
  std::int64_t run_start = 0;
  for (std::int64_t layer = 1; layer <= model.num_layers; ++layer) {
    if (layer < model.num_layers && model.is_moe_layer(layer) == model.is_moe_layer(run_start))
      continue;
    runs += fmt::format("{}[{}]*{}", runs.empty() ? "" : "+", model.is_moe_layer(run_start) ? 1 : 0,
                        layer - run_start);
    run_start = layer;
  }
  return "(" + runs + ")";
}

// Rules Megatron enforces that validate_plan does not know, because they concern Megatron's
// implementation rather than the plan's arithmetic.
void check_megatron_rules(const Plan& plan) {
  // TransformerConfig.__post_init__: "MTP supports at most one layer when enabling
  // overlap_moe_expert_parallel_comm".
  if (plan.options.overlap_moe_expert_parallel_comm && plan.model.mtp_num_layers > 1) {
    throw InputError("options.overlap_moe_expert_parallel_comm",
                     fmt::format("true allows at most 1 MTP layer; model.mtp_num_layers is {}",
                                 plan.model.mtp_num_layers));
  }
  // Transformer Engine refuses fp8 on a GPU without fp8 tensor cores (before Hopper).
  if (plan.options.precision != Precision::bf16 && plan.cluster.gpu.fp8_flops <= 0) {
    throw InputError("options.precision",
                     fmt::format("{} needs fp8 tensor cores; the cluster's {} has none "
                                 "(cluster.gpu.fp8_tflops is 0)",
                                 to_string(plan.options.precision), plan.cluster.gpu.name));
  }
}

void add_model_flags(const Plan& plan, FlagList& flags) {
  const ModelSpec& model = plan.model;
  flags.add("--num-layers", model.num_layers);
  flags.add("--hidden-size", model.hidden_size);
  flags.add("--ffn-hidden-size", model.ffn_hidden_size);
  flags.add("--num-attention-heads", model.num_attention_heads);
  // Megatron ignores --num-query-groups unless --group-query-attention is given.
  if (!model.mla && model.num_query_groups < model.num_attention_heads) {
    flags.add("--group-query-attention");
    flags.add("--num-query-groups", model.num_query_groups);
  }
  flags.add("--kv-channels", model.kv_channels);
  if (model.mla) {
    flags.add("--multi-latent-attention");
    // Unset, Megatron projects the queries directly, which is what a rank of 0 means here.
    if (model.mla->q_lora_rank > 0)
      flags.add("--q-lora-rank", model.mla->q_lora_rank);
    flags.add("--kv-lora-rank", model.mla->kv_lora_rank);
    flags.add("--qk-head-dim", model.mla->qk_head_dim);
    flags.add("--qk-pos-emb-head-dim", model.mla->qk_pos_emb_head_dim);
    flags.add("--v-head-dim", model.mla->v_head_dim);
  }
  flags.add("--seq-length", plan.training.seq_length);
  // validate_args: max_position_embeddings >= seq_length; rotary embeddings need no more.
  flags.add("--max-position-embeddings", plan.training.seq_length);
  flags.add("--position-embedding-type", "rope");
  // Megatron's defaults are gelu and LayerNorm.
  if (model.activation == Activation::swiglu)
    flags.add("--swiglu");
  if (model.normalization == Normalization::rmsnorm)
    flags.add("--normalization", "RMSNorm");
  // foldplan counts no linear biases; Megatron also forbids them in experts when ETP > 1.
  flags.add("--disable-bias-linear");
  if (model.untie_embeddings_and_output_weights)
    flags.add("--untie-embeddings-and-output-weights");
  if (model.mtp_num_layers > 0)
    flags.add("--mtp-num-layers", model.mtp_num_layers);
}

void add_moe_flags(const Plan& plan, FlagList& flags) {
  const ModelSpec& model = plan.model;
  if (!model.is_moe())
    return;
  flags.add("--num-experts", model.moe.num_experts);
  flags.add("--moe-ffn-hidden-size", model.moe.ffn_hidden_size);
  flags.add("--moe-router-topk", model.moe.router_topk);
  // TransformerConfig: a softmax over the one selected expert has no gradient, so top-1 routing
  // takes the softmax before the top-k ("Please use --moe-router-pre-softmax when topk is 1").
  if (model.moe.router_topk == 1)
    flags.add("--moe-router-pre-softmax");
  // Megatron requires the shared-expert size to be positive when given.
  if (model.moe.shared_expert_intermediate_size > 0) {
    flags.add("--moe-shared-expert-intermediate-size", model.moe.shared_expert_intermediate_size);
  }
  if (const std::optional<std::string> freq = moe_layer_freq(model))
    flags.add("--moe-layer-freq", *freq);
  // The plan is timed with balanced routing, which training approaches only under a
  // load-balancing loss; Megatron's default coefficient is 0, which turns the aux loss off even
  // though the type defaults to aux_loss. 1e-2 is the coefficient of Megatron's Mixtral example
  // and of the Switch Transformer.
  flags.add("--moe-router-load-balancing-type", "aux_loss");
  flags.add("--moe-aux-loss-coeff", "1e-2");
  // The cost model times the experts as Transformer Engine's grouped GEMM.
  flags.add("--moe-grouped-gemm");
  flags.add("--moe-token-dispatcher-type", to_string(plan.options.dispatcher));
  if (plan.options.capacity_factor) {
    flags.add("--moe-expert-capacity-factor", decimal(*plan.options.capacity_factor));
    if (plan.options.pad_to_capacity)
      flags.add("--moe-pad-expert-input-to-capacity");
    flags.add("--moe-token-drop-policy", to_string(plan.options.drop_policy));
  }
}

void add_parallel_flags(const Plan& plan, FlagList& flags) {
  const ParallelConfig& parallel = plan.parallel;
  flags.add("--tensor-model-parallel-size", parallel.tp);
  // MoELayer.forward raises during training when TP > 1 without sequence parallelism.
  if (parallel.tp > 1)
    flags.add("--sequence-parallel");
  if (parallel.cp > 1) {
    flags.add("--context-parallel-size", parallel.cp);
    flags.add("--cp-comm-type", to_string(plan.options.cp_comm_type));
  }
  flags.add("--pipeline-model-parallel-size", parallel.pp);
  // VPP = (L / PP) / layers per virtual stage; the plan's even split makes it a whole number.
  if (parallel.vpp > 1) {
    flags.add("--num-layers-per-virtual-pipeline-stage",
              plan.model.num_layers / (parallel.pp * parallel.vpp));
  }
  if (plan.model.is_moe()) {
    flags.add("--expert-model-parallel-size", parallel.ep);
    // Always explicit: Megatron's default is ETP = TP, which folding usually departs from.
    flags.add("--expert-tensor-parallel-size", parallel.etp);
  }
}

void add_batch_flags(const Plan& plan, FlagList& flags) {
  flags.add("--micro-batch-size", plan.training.micro_batch_size);
  flags.add("--global-batch-size", plan.training.global_batch_size);
}

void add_recompute_flags(const Plan& plan, FlagList& flags) {
  switch (plan.options.recompute) {
  case Recompute::none:
    return;
  case Recompute::selective:
    // Megatron's default --recompute-modules for selective is core_attn, as the plan assumes.
    flags.add("--recompute-granularity", "selective");
    return;
  case Recompute::full:
    // validate_args: full recompute needs a method and a layer count; every layer recomputes.
    flags.add("--recompute-granularity", "full");
    flags.add("--recompute-method", "uniform");
    flags.add("--recompute-num-layers", std::int64_t{1});
    return;
  }
}

void add_optimizer_flags(const Plan& plan, FlagList& flags) {
  // The memory model shards optimizer state as the distributed optimizer does.
  flags.add("--use-distributed-optimizer");
  if (plan.options.overlap_grad_reduce)
    flags.add("--overlap-grad-reduce");
  if (plan.options.overlap_param_gather)
    flags.add("--overlap-param-gather");
  if (plan.options.overlap_moe_expert_parallel_comm)
    flags.add("--overlap-moe-expert-parallel-comm");
}

void add_precision_flags(const Plan& plan, FlagList& flags) {
  // fp8 runs on top of bf16 parameters, so --bf16 is always there.
  flags.add("--bf16");
  if (plan.options.precision != Precision::bf16) {
    // The flag is --fp8-format (the field is fp8); hybrid is e4m3 forward, e5m2 backward.
    flags.add("--fp8-format", "hybrid");
    flags.add("--fp8-recipe",
              plan.options.precision == Precision::fp8_blockwise ? "blockwise" : "tensorwise");
  }
  flags.add("--transformer-impl", "transformer_engine");
}

void add_synthetic_run_flags(const Plan& plan, FlagList& flags) {
  flags.add("--mock-data");
  flags.add("--tokenizer-type", "NullTokenizer");
  // NullTokenizer's vocabulary is --vocab-size plus its end-of-document token.
  flags.add("--vocab-size", plan.model.vocab_size - 1);
  flags.add("--train-iters", kBenchmarkIterations);
  flags.add("--eval-iters", std::int64_t{0});
  flags.add("--lr", kBenchmarkLearningRate);
  flags.add("--log-interval", kBenchmarkLogInterval);
  flags.add("--log-throughput");
}

// Blackwell (compute capability 10) and later have no CUDA_DEVICE_MAX_CONNECTIONS rule. The GPU
// spec carries only a name, so the architecture comes from it: B100/B200/B300 and GB200/GB300.
bool is_blackwell_or_newer(const GpuSpec& gpu) {
  return gpu.name.starts_with("B") || gpu.name.starts_with("GB");
}

// Characters a POSIX shell reads as part of a plain word.
bool shell_safe(const std::string& word) {
  return !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("_-+=.,:/@%").find(c) != std::string_view::npos;
  });
}

std::string shell_quote(const std::string& word) {
  if (shell_safe(word))
    return word;
  std::string quoted = "'";
  for (const char c : word)
    quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

struct LaunchShape {
  std::int64_t nodes = 1;
  std::int64_t gpus_per_node = 1;
};

// torchrun starts the same number of processes on every node.
LaunchShape launch_shape(const Plan& plan) {
  const std::int64_t per_node = std::min(plan.gpus, plan.cluster.gpus_per_node);
  if (plan.gpus % per_node != 0) {
    throw InputError("plan.gpus", fmt::format("{} is not a multiple of gpus_per_node {} of "
                                              "cluster {} (torchrun needs whole nodes)",
                                              plan.gpus, per_node, plan.cluster.name));
  }
  return {.nodes = plan.gpus / per_node, .gpus_per_node = per_node};
}

std::string describe_plan(const Plan& plan, const LaunchShape& launch) {
  const ParallelConfig& c = plan.parallel;
  std::string text = fmt::format("# Megatron-LM run of a foldplan plan: {} on {} x {} ({}, {} "
                                 "node{})\n",
                                 plan.model.name, plan.gpus, plan.cluster.gpu.name,
                                 plan.cluster.name, launch.nodes, launch.nodes == 1 ? "" : "s");
  text += fmt::format("# attention TP{} CP{} DP{} PP{}{}", c.tp, c.cp, c.dp, c.pp,
                      c.vpp > 1 ? fmt::format(" VPP{}", c.vpp) : "");
  if (plan.model.is_moe()) {
    text += fmt::format(" | MoE ETP{} EP{} EDP{} ({})", c.etp, c.ep, c.edp,
                        plan.options.folding ? "folded" : "no folding: ETP = TP, EP within DP");
  }
  text += fmt::format("\n# seq {}, global batch {}, micro-batch {}: {} micro-batches per step "
                      "on each DP rank\n",
                      plan.training.seq_length, plan.training.global_batch_size,
                      plan.training.micro_batch_size, num_micro_batches(c, plan.training));
  if (plan.prediction) {
    const Prediction& p = *plan.prediction;
    text += fmt::format("# foldplan predicts a step of {}, MFU {:.1f}%, peak memory {} of {} per "
                        "GPU\n",
                        units::format_time(p.step_time_s), 100 * p.mfu,
                        units::format_bytes(p.peak_memory_bytes),
                        units::format_bytes(plan.cluster.gpu.hbm_bytes));
  }
  text += fmt::format(
      "#\n"
      "# Run from Megatron-LM's root on each node, with NODE_RANK, MASTER_ADDR and MASTER_PORT "
      "set.\n"
      "# The flags from --mock-data on are a short synthetic run that measures the step time;\n"
      "# NullTokenizer adds an end-of-document token to --vocab-size, so the model has the "
      "plan's {}\n"
      "# tokens. To train, replace them with your data, tokenizer and schedule.\n",
      plan.model.vocab_size);
  return text;
}

} // namespace

std::vector<MegatronFlag> megatron_flags(const Plan& plan) {
  // A plan built in code has not been through plan_from_json's checks of its parts.
  validate_model(plan.model);
  validate_cluster(plan.cluster);
  validate_plan(plan);
  check_megatron_rules(plan);
  FlagList flags;
  add_model_flags(plan, flags);
  add_moe_flags(plan, flags);
  add_parallel_flags(plan, flags);
  add_batch_flags(plan, flags);
  add_recompute_flags(plan, flags);
  add_optimizer_flags(plan, flags);
  add_precision_flags(plan, flags);
  add_synthetic_run_flags(plan, flags);
  return std::move(flags).take();
}

std::vector<std::string> megatron_arguments(const Plan& plan) {
  std::vector<std::string> arguments;
  for (const MegatronFlag& flag : megatron_flags(plan)) {
    arguments.push_back(flag.name);
    arguments.insert(arguments.end(), flag.values.begin(), flag.values.end());
  }
  return arguments;
}

std::vector<EnvironmentVariable> megatron_environment(const Plan& plan) {
  if (plan.options.overlap_moe_expert_parallel_comm) {
    // validate_args leaves the choice between 1 (TP/CP overlap) and 32 to the user when the EP
    // overlap is on; the plan chose the EP overlap, whose second stream needs more queues.
    return {{"CUDA_DEVICE_MAX_CONNECTIONS", "32",
             "The EP overlap's all-to-all stream needs more than one hardware queue (Megatron: "
             "1 or 32)"}};
  }
  if ((plan.parallel.tp > 1 || plan.parallel.cp > 1) && !is_blackwell_or_newer(plan.cluster.gpu)) {
    return {{"CUDA_DEVICE_MAX_CONNECTIONS", "1",
             "Megatron asserts it before Blackwell when TP > 1 or CP > 1 (arguments.py "
             "validate_args)"}};
  }
  return {};
}

std::string render_continuation_lines(const std::vector<MegatronFlag>& flags) {
  std::string text;
  for (std::size_t i = 0; i < flags.size(); ++i) {
    text += fmt::format("  {}", flags[i].name);
    for (const std::string& value : flags[i].values)
      text += fmt::format(" {}", shell_quote(value));
    text += i + 1 < flags.size() ? " \\\n" : "\n";
  }
  return text;
}

std::string render_megatron_command(const Plan& plan) {
  const std::vector<MegatronFlag> flags = megatron_flags(plan);
  const LaunchShape launch = launch_shape(plan);
  std::string text = describe_plan(plan, launch);
  for (const EnvironmentVariable& variable : megatron_environment(plan)) {
    text += fmt::format("\n# {}\nexport {}={}\n", variable.reason, variable.name,
                        shell_quote(variable.value));
  }
  text +=
      fmt::format("\ntorchrun --nproc-per-node {} --nnodes {} --node-rank \"${{NODE_RANK:-0}}\" "
                  "\\\n  --master-addr \"${{MASTER_ADDR:-localhost}}\" "
                  "--master-port \"${{MASTER_PORT:-6000}}\" \\\n  {} \\\n",
                  launch.gpus_per_node, launch.nodes, kTrainingScript);
  return text + render_continuation_lines(flags);
}

} // namespace foldplan
