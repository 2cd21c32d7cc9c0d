// `foldplan estimate`: the analytic time, memory and MFU of one configuration, with the breakdown
// that says where the step goes; `-o` writes it as a plan file the other commands read.
#include <array>

#include <fmt/format.h>

#include "cli/command.hpp"
#include "cli/plan_flags.hpp"
#include "cli/table.hpp"
#include "core/file_io.hpp"
#include "core/units.hpp"
#include "costmodel/cost_context.hpp"
#include "costmodel/step_estimate.hpp"

namespace foldplan::cli {
namespace {

struct EstimateOptions {
  PlanFlags plan;
  bool json = false;
  std::string output;
  std::string calibration;
};

std::string percent(double fraction) {
  return fmt::format("{:.1f}%", 100 * fraction);
}

void print_estimate(const Plan& plan, const StepEstimate& estimate, bool calibrated) {
  const ParallelConfig& c = plan.parallel;
  const Prediction& p = estimate.prediction;
  fmt::print("{} on {} x {} ({}), seq {}, GBS {}, mbs {} -> {} micro-batches per DP rank\n",
             plan.model.name, plan.gpus, plan.cluster.gpu.name, plan.cluster.name,
             plan.training.seq_length, plan.training.global_batch_size,
             plan.training.micro_batch_size, estimate.micro_batches);
  fmt::print("attention TP{} CP{} DP{} PP{}{} | MoE ETP{} EP{} EDP{} ({}), {}, {}, recompute {}, {}"
             "{}\n\n",
             c.tp, c.cp, c.dp, c.pp, c.vpp > 1 ? fmt::format(" VPP{}", c.vpp) : "", c.etp, c.ep,
             c.edp, plan.options.folding ? "folded" : "no folding",
             to_string(plan.options.dispatcher),
             plan.options.capacity_factor
                 ? fmt::format("capacity factor {}{}", *plan.options.capacity_factor,
                               plan.options.pad_to_capacity ? " padded" : "")
                 : "dropless",
             to_string(plan.options.recompute), to_string(plan.options.precision),
             calibrated ? "" : "  [no calibration for this GPU: physical model]");
  fmt::print("step time {}   MFU {}   {:.1f} TFLOP/s/GPU   {:.0f} tokens/s/GPU\n",
             units::format_time(p.step_time_s), percent(p.mfu), p.tflops_per_gpu,
             p.tokens_per_s_per_gpu);
  fmt::print("peak memory {} of {} per GPU ({})\n\n", units::format_bytes(p.peak_memory_bytes),
             units::format_bytes(plan.cluster.gpu.hbm_bytes), p.fits ? "fits" : "DOES NOT FIT");

  Table time(
      {{"time (critical stage " + std::to_string(estimate.critical_stage) + ")", Align::left},
       {"per step", Align::right},
       {"share", Align::right}});
  // Compute first, then communication from the innermost dimension out, then the pipeline.
  constexpr std::array kTermOrder = {"compute", "tp_comm",  "cp_comm",
                                     "ep_comm", "etp_comm", "host_sync",
                                     "pp_comm", "bubble",   "dp_comm_and_optimizer"};
  for (const char* name : kTermOrder) {
    const auto term = p.breakdown.find(name);
    if (term == p.breakdown.end() || term->second <= 0)
      continue;
    time.add_row({name, units::format_time(term->second), percent(term->second / p.step_time_s)});
  }
  time.add_row({"step", units::format_time(p.step_time_s), "100.0%"});
  fmt::print("{}\n", time.render());

  Table memory({{"memory (most loaded GPU)", Align::left}, {"bytes", Align::right}});
  for (const auto& [name, bytes] : p.memory)
    memory.add_row({name, units::format_bytes(bytes)});
  memory.add_row({"total", units::format_bytes(p.peak_memory_bytes)});
  fmt::print("{}", memory.render());
}

int run_estimate(const EstimateOptions& options) {
  Plan plan = plan_from_flags(options.plan);
  std::optional<GpuCalibration> calibration;
  if (!options.calibration.empty())
    calibration = load_calibration(options.calibration);
  const CostContext context(plan.cluster, plan.gpus, calibration);
  const StepEstimate estimate = estimate_step(context, plan);
  plan.prediction = estimate.prediction;
  if (!options.output.empty())
    save_plan(plan, options.output);
  if (options.json) {
    fmt::print("{}\n", prediction_to_json(estimate.prediction).dump(2));
  } else {
    print_estimate(plan, estimate, context.calibrated());
    if (!options.output.empty())
      fmt::print("\nplan written to {}\n", options.output);
  }
  return 0;
}

} // namespace

void add_estimate_command(CLI::App& app, CommandAction& chosen) {
  auto options = std::make_shared<EstimateOptions>();
  CLI::App* command = app.add_subcommand(
      "estimate", "Predict step time, MFU and memory per GPU of one configuration");
  add_plan_flags(*command, options->plan);
  command->add_flag("--json", options->json, "print the prediction as JSON");
  command->add_option("-o,--output", options->output, "write the plan with its prediction here");
  command->add_option("--calibration", options->calibration,
                      "a calibration file from `foldplan calibrate` (default: the shipped one)");
  command->callback([&chosen, options] { chosen = [options] { return run_estimate(*options); }; });
}

} // namespace foldplan::cli
