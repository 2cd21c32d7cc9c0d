// `foldplan run PLAN.json`: lowers the plan (optionally cut to --layers layers) to every rank's
// step program, exactly as `simulate` does, and executes it on the GPUs — threads on local GPUs or
// one process per GPU under mpirun/srun — then puts the measured times beside the cost model's,
// by op class, attention priced from our own kernel's measurements (cli/run_prediction.hpp). MoE
// models first run each MoE layer shape for real and check it against a CPU reference; a failed
// check fails the run.
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "cli/command.hpp"
#include "cli/plan_execution.hpp"
#include "cli/table.hpp"
#include "core/file_io.hpp"
#include "core/units.hpp"

namespace foldplan::cli {
namespace {

struct RunOptions {
  PlanExecutionOptions execution;
  bool json = false;
  std::string output;
};

void print_table(const StepProgram& program, const runtime::MeasuredStep& measured,
                 const std::vector<std::map<int, double>>& predicted, double predicted_step_s) {
  std::size_t index = 0;
  for (std::size_t candidate = 0; candidate < measured.programs.size(); ++candidate) {
    const auto& ranks = measured.programs[candidate].ranks;
    if (std::find(ranks.begin(), ranks.end(), measured.slowest_rank) != ranks.end())
      index = candidate;
  }
  const RankProgram& rank_program = program.programs[index];
  const auto measured_classes =
      runtime::time_by_op_class(rank_program, measured.programs[index].op_time_s);
  const auto predicted_classes = runtime::time_by_op_class(rank_program, predicted[index]);
  double measured_total = 0;
  for (const runtime::ClassTime& entry : measured_classes)
    measured_total += entry.time_s;
  fmt::print("measured on {} x {}: step {} (slowest rank {}), predicted {} ({:+.1f}%); median "
             "of {} steps after {} warm-up\n",
             measured.world_size, measured.device, units::format_time(measured.step_time_s),
             measured.slowest_rank, units::format_time(predicted_step_s),
             100 * (predicted_step_s / measured.step_time_s - 1), measured.timed_steps,
             measured.warmup_steps);
  Table table({{"op class (rank " + std::to_string(measured.programs[index].measured_rank) + ")",
                Align::left},
               {"ops", Align::right},
               {"measured ms/step", Align::right},
               {"share", Align::right},
               {"predicted ms/step", Align::right},
               {"predicted/measured", Align::right}});
  for (const runtime::ClassTime& entry : measured_classes) {
    double predicted_s = 0;
    for (const runtime::ClassTime& other : predicted_classes) {
      if (other.op_class == entry.op_class)
        predicted_s = other.time_s;
    }
    table.add_row({entry.op_class, std::to_string(entry.ops),
                   fmt::format("{:.3f}", entry.time_s * 1e3),
                   fmt::format("{:.1f}%", 100 * entry.time_s / measured_total),
                   fmt::format("{:.3f}", predicted_s * 1e3),
                   entry.time_s > 0 ? fmt::format("{:.2f}", predicted_s / entry.time_s) : "-"});
  }
  fmt::print("\n{}", table.render());
  fmt::print("(op times summed over the step; ops on different streams overlap, so the sum can "
             "exceed the step)\n");
}

int run_run(const RunOptions& options) {
  return execute_and_report(
      options.execution, "run", options.json, [&options](const PlanExecution& execution) {
        const runtime::MeasuredStep& measured = execution.measured;
        const RunPrediction& prediction = execution.prediction;
        const std::string text = runtime::measured_step_to_json(measured).dump(2) + "\n";
        if (!options.output.empty())
          write_file_atomically(options.output, text);
        if (options.json) {
          fmt::print("{}", text);
          return std::vector<std::string>{};
        }
        fmt::print("{}: {} ({} layers), routing {}\n", options.execution.plan_path,
                   execution.plan.model.name, execution.plan.model.num_layers,
                   execution.routing.text);
        print_table(execution.program, measured, prediction.op_time_s, prediction.step_time_s);
        if (prediction.attention_note)
          fmt::print("note: {}\n", *prediction.attention_note);
        return options.output.empty() ? std::vector<std::string>{}
                                      : std::vector<std::string>{options.output};
      });
}

} // namespace

void add_run_command(CLI::App& app, CommandAction& chosen) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* command = app.add_subcommand(
      "run", "Execute a plan's step on GPUs (NCCL, cuBLAS) and put measured beside predicted");
  add_plan_execution_flags(*command, options->execution);
  command->add_flag("--json", options->json, "print the measurements as JSON");
  command->add_option("-o,--output", options->output, "write the measurements (JSON) here");
  command->callback([&chosen, options] { chosen = [options] { return run_run(*options); }; });
}

} // namespace foldplan::cli
