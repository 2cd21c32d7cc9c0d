// `foldplan explain PLAN.json`: where a plan's step goes — one layer of each kind term by term,
// every pipeline stage, each communication group and the links it crosses, memory per stage
// against the GPU — and the next-best plans with what separates them.
#include <fmt/format.h>

#include "cli/command.hpp"
#include "cli/table.hpp"
#include "core/errors.hpp"
#include "core/units.hpp"
#include "planner/plan_explanation.hpp"

namespace foldplan::cli {
namespace {

struct ExplainOptions {
  std::string plan_path;
  std::int64_t alternatives = 3;
  bool json = false;
  std::string calibration;
};

std::string ms(double seconds) {
  return units::format_time(seconds);
}

std::string percent(double fraction) {
  return fmt::format("{:.1f}%", 100 * fraction);
}

void print_layers(const PlanExplanation& explanation) {
  Table table({{"one layer, one micro-batch", Align::left},
               {"GEMM", Align::right},
               {"attention", Align::right},
               {"memory-bound", Align::right},
               {"TP comm", Align::right},
               {"CP comm", Align::right},
               {"EP comm", Align::right},
               {"ETP comm", Align::right},
               {"host sync", Align::right},
               {"total", Align::right}});
  for (const LayerExplanation& layer : explanation.layers) {
    for (const auto& [pass, cost] :
         {std::pair{"forward", layer.cost.forward}, std::pair{"backward", layer.cost.backward}}) {
      table.add_row({fmt::format("{} x{} {}", layer.kind, layer.count, pass), ms(cost.gemm_s),
                     ms(cost.attention_s), ms(cost.memory_bound_s), ms(cost.tp_comm_s),
                     ms(cost.cp_comm_s), ms(cost.ep_comm_s), ms(cost.etp_comm_s),
                     ms(cost.host_sync_s), ms(cost.total_s())});
    }
  }
  fmt::print("{}\n", table.render());
}

void print_stages(const Plan& plan, const PlanExplanation& explanation) {
  Table table({{"stage", Align::right},
               {"per micro-batch", Align::right},
               {"PP send", Align::right},
               {"DP reduce", Align::right},
               {"DP gather", Align::right},
               {"DP exposed", Align::right},
               {"optimizer", Align::right},
               {"memory", Align::right},
               {"of GPU", Align::right}});
  for (std::size_t r = 0; r < explanation.estimate.stages.size(); ++r) {
    const StageEstimate& stage = explanation.estimate.stages[r];
    const double memory = explanation.stage_memory[r].total_bytes();
    const bool critical = static_cast<int>(r) == explanation.estimate.critical_stage;
    table.add_row({fmt::format("{}{}", r, critical ? "*" : ""), ms(stage.per_micro_batch_s()),
                   ms(stage.pipeline_send_s), ms(stage.grad_reduce_s), ms(stage.param_gather_s),
                   ms(stage.exposed_dp_s), ms(stage.optimizer_s), units::format_bytes(memory),
                   percent(memory / plan.cluster.gpu.hbm_bytes)});
  }
  fmt::print("{}(* paces the pipeline)\n\n", table.render());
}

void print_groups(const PlanExplanation& explanation) {
  Table table({{"group", Align::left},
               {"ranks", Align::right},
               {"nodes", Align::right},
               {"links", Align::left},
               {"per step", Align::right},
               {"carries", Align::left}});
  for (const GroupExplanation& group : explanation.groups) {
    table.add_row({group.name, std::to_string(group.ranks), std::to_string(group.nodes),
                   group.links, ms(group.step_s), group.carries});
  }
  fmt::print("{}(per step: the estimate's time on the group before overlap with compute; DP "
             "groups: one whole reduce-scatter and all-gather)\n\n",
             table.render());
}

void print_memory(const Plan& plan, const PlanExplanation& explanation) {
  const MemoryBreakdown& peak =
      explanation.stage_memory[static_cast<std::size_t>(explanation.estimate.peak_memory_stage)];
  Table table({{fmt::format("memory of stage {} (the most loaded)", peak.pp_rank), Align::left},
               {"bytes", Align::right}});
  for (const auto& [name, bytes] : memory_terms(peak))
    table.add_row({name, units::format_bytes(bytes)});
  table.add_row({"total", units::format_bytes(peak.total_bytes())});
  table.add_row({"GPU", units::format_bytes(plan.cluster.gpu.hbm_bytes)});
  fmt::print("{}\n", table.render());
}

void print_alternatives(const Plan& plan, const PlanExplanation& explanation) {
  if (explanation.alternatives.empty())
    return;
  Table table({{"next best", Align::right},
               {"step", Align::right},
               {"vs this plan", Align::right},
               {"MFU", Align::right},
               {"memory", Align::right},
               {"what differs", Align::left},
               {"largest change", Align::left}});
  for (std::size_t i = 0; i < explanation.alternatives.size(); ++i) {
    const Alternative& alternative = explanation.alternatives[i];
    const Prediction& p = *alternative.plan.plan.prediction;
    table.add_row({std::to_string(i + 1), ms(p.step_time_s),
                   fmt::format("{:+.1f}%", 100 * alternative.step_time_delta_s /
                                               explanation.estimate.prediction.step_time_s),
                   percent(p.mfu), units::format_bytes(p.peak_memory_bytes),
                   alternative.differences, alternative.biggest_term_change});
  }
  fmt::print("the best plans of the same space ({}, {}):\n{}",
             plan.options.folding ? "folded" : "no folding",
             plan.options.capacity_factor
                 ? fmt::format("capacity factor {:g}", *plan.options.capacity_factor)
                 : "dropless",
             table.render());
}

int run_explain(const ExplainOptions& options) {
  const Plan plan = load_plan(options.plan_path);
  if (options.alternatives < 0) {
    throw InputError("--alternatives",
                     fmt::format("{} is negative (0 leaves them out)", options.alternatives));
  }
  std::optional<GpuCalibration> calibration;
  if (!options.calibration.empty())
    calibration = load_calibration(options.calibration);
  const CostContext context(plan.cluster, plan.gpus, calibration);
  const PlanExplanation explanation = explain_plan(plan, context, options.alternatives);
  if (options.json) {
    fmt::print("{}\n", explanation_to_json(explanation).dump(2));
    return 0;
  }
  const Prediction& p = explanation.estimate.prediction;
  const ParallelConfig& c = plan.parallel;
  fmt::print("{}: {} on {} x {}, seq {}, GBS {}, mbs {}\n", options.plan_path, plan.model.name,
             plan.gpus, plan.cluster.gpu.name, plan.training.seq_length,
             plan.training.global_batch_size, plan.training.micro_batch_size);
  fmt::print("attention TP{} CP{} DP{} PP{} VPP{} | MoE ETP{} EP{} EDP{} ({}), {} micro-batches\n",
             c.tp, c.cp, c.dp, c.pp, c.vpp, c.etp, c.ep, c.edp,
             plan.options.folding ? "folded" : "no folding", explanation.estimate.micro_batches);
  fmt::print("step {}   MFU {}   {:.1f} TFLOP/s/GPU   peak memory {} ({})\n\n", ms(p.step_time_s),
             percent(p.mfu), p.tflops_per_gpu, units::format_bytes(p.peak_memory_bytes),
             p.fits ? "fits" : "DOES NOT FIT");
  print_layers(explanation);
  print_stages(plan, explanation);
  print_groups(explanation);
  print_memory(plan, explanation);
  fmt::print("\n");
  print_alternatives(plan, explanation);
  return 0;
}

} // namespace

void add_explain_command(CLI::App& app, CommandAction& chosen) {
  auto options = std::make_shared<ExplainOptions>();
  CLI::App* command = app.add_subcommand(
      "explain", "Where a plan's step time and memory go, and the next-best plans");
  command->add_option("PLAN", options->plan_path, "plan file (from search, estimate -o)")
      ->required();
  command
      ->add_option("--alternatives", options->alternatives,
                   "next-best plans to compare with (0: none)")
      ->capture_default_str();
  command->add_flag("--json", options->json, "print the explanation as JSON");
  command->add_option("--calibration", options->calibration,
                      "a calibration file from `foldplan calibrate` (default: the shipped one)");
  command->callback([&chosen, options] { chosen = [options] { return run_explain(*options); }; });
}

} // namespace foldplan::cli
