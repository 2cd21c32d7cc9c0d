#include "cli/plan_flags.hpp"

#include <fmt/format.h>

#include "core/errors.hpp"

namespace foldplan::cli {

void add_plan_flags(CLI::App& command, PlanFlags& flags) {
  command.add_option("--model", flags.model, "model preset or JSON path")->capture_default_str();
  command.add_option("--cluster", flags.cluster, "cluster preset or JSON path")
      ->capture_default_str();
  command.add_option("--gpus", flags.gpus, "number of GPUs")->capture_default_str();
  command.add_option("--seq", flags.training.seq_length, "sequence length")->capture_default_str();
  command.add_option("--gbs", flags.training.global_batch_size, "global batch size (sequences)")
      ->capture_default_str();
  command.add_option("--mbs", flags.training.micro_batch_size, "micro-batch size")
      ->capture_default_str();
  command.add_option("--tp", flags.sizes.tp, "tensor parallel size")->capture_default_str();
  command.add_option("--cp", flags.sizes.cp, "context parallel size")->capture_default_str();
  command.add_option("--pp", flags.sizes.pp, "pipeline parallel size")->capture_default_str();
  command.add_option("--vpp", flags.sizes.vpp, "virtual pipeline stages per pipeline rank")
      ->capture_default_str();
  command.add_option("--ep", flags.sizes.ep, "expert parallel size")->capture_default_str();
  command.add_option("--etp", flags.etp,
                     "expert tensor parallel size (default 1 with folding, TP without)");
  command.add_flag("--no-folding", flags.no_folding,
                   "pre-folding Megatron: ETP = TP and EP carved out of DP");
  command.add_option("--recompute", flags.recompute, "none, selective or full")
      ->capture_default_str();
  command.add_option("--dispatcher", flags.dispatcher, "MoE token dispatcher: alltoall, allgather")
      ->capture_default_str();
  command.add_option("--capacity-factor", flags.capacity_factor,
                     "expert capacity factor (token dropping); omit for dropless");
  command.add_flag("--pad-to-capacity", flags.pad_to_capacity,
                   "pad every expert's input to its capacity");
  command.add_option("--fp8", flags.fp8, "fp8 recipe: tensorwise or blockwise (default bf16)");
  command
      .add_option("--cp-comm-type", flags.cp_comm_type,
                  "context-parallel communication: p2p (KV ring) or a2a (all-to-all over heads)")
      ->capture_default_str();
  command.add_flag("--no-overlap-grad-reduce", flags.no_overlap_grad_reduce,
                   "do not overlap the DP gradient reduce-scatter and parameter all-gather");
  command.add_flag("--overlap-ep-comm", flags.overlap_ep_comm,
                   "Megatron's --overlap-moe-expert-parallel-comm");
}

Precision precision_from_fp8_flag(const std::string& recipe) {
  if (recipe.empty())
    return Precision::bf16;
  if (recipe == "tensorwise")
    return Precision::fp8_tensorwise;
  if (recipe == "blockwise")
    return Precision::fp8_blockwise;
  throw InputError("--fp8", fmt::format("\"{}\" is not one of tensorwise, blockwise", recipe));
}

Plan plan_from_flags(const PlanFlags& flags) {
  Plan plan;
  plan.model = load_model(flags.model, "--model");
  plan.cluster = load_cluster(flags.cluster, "--cluster");
  plan.gpus = flags.gpus;
  plan.training = flags.training;
  ParallelSizes sizes = flags.sizes;
  if (flags.etp != 0)
    sizes.etp = flags.etp;
  plan.options.folding = !flags.no_folding;
  plan.parallel = make_parallel_config(flags.gpus, sizes, plan.options.folding);
  plan.options.recompute = parse_recompute(flags.recompute, "--recompute");
  plan.options.dispatcher = parse_dispatcher(flags.dispatcher, "--dispatcher");
  if (flags.capacity_factor < 0) {
    throw InputError("--capacity-factor", fmt::format("{} is negative", flags.capacity_factor));
  }
  if (flags.capacity_factor > 0)
    plan.options.capacity_factor = flags.capacity_factor;
  plan.options.pad_to_capacity = flags.pad_to_capacity;
  plan.options.precision = precision_from_fp8_flag(flags.fp8);
  plan.options.cp_comm_type = parse_cp_comm_type(flags.cp_comm_type, "--cp-comm-type");
  plan.options.overlap_grad_reduce = !flags.no_overlap_grad_reduce;
  plan.options.overlap_param_gather = !flags.no_overlap_grad_reduce;
  plan.options.overlap_moe_expert_parallel_comm = flags.overlap_ep_comm;
  validate_plan(plan);
  return plan;
}

} // namespace foldplan::cli
