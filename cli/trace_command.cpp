// `foldplan trace PLAN.json -o trace.json`: the simulated step as a Chrome trace (one track per
// rank and stream) that Perfetto and chrome://tracing open.
#include <fmt/format.h>

#include "cli/command.hpp"
#include "core/errors.hpp"
#include "core/file_io.hpp"
#include "costmodel/cost_context.hpp"
#include "simulator/chrome_trace.hpp"
#include "simulator/event_simulation.hpp"
#include "simulator/lowering.hpp"
#include "simulator/op_timer.hpp"

namespace foldplan::cli {
namespace {

struct TraceOptions {
  std::string plan_path;
  std::string output;
  std::vector<std::int64_t> ranks; // empty: the first rank of every pipeline stage
};

int run_trace(const TraceOptions& options) {
  const Plan plan = load_plan(options.plan_path);
  for (const std::int64_t rank : options.ranks) {
    if (rank < 0 || rank >= plan.gpus) {
      throw InputError("--ranks",
                       fmt::format("{} is not a rank of the plan's {} GPUs", rank, plan.gpus));
    }
  }
  const CostContext context(plan.cluster, plan.gpus);
  const StepProgram program = lower_plan(plan);
  const CostModelOpTimer timer(context, program);
  const SimulationResult simulated =
      simulate_step(program, [&](const Op& op, std::int64_t rank) { return timer(op, rank); },
                    {.record_timeline = true});
  const std::vector<std::int64_t> ranks =
      options.ranks.empty() ? first_rank_of_each_program(program) : options.ranks;
  write_file_atomically(options.output, chrome_trace(program, simulated, ranks).dump() + "\n");
  fmt::print("wrote {}: {} ranks, step {:.3f} s; open it in https://ui.perfetto.dev or "
             "chrome://tracing\n",
             options.output, ranks.size(), simulated.step_time_s);
  return 0;
}

} // namespace

void add_trace_command(CLI::App& app, CommandAction& chosen) {
  auto options = std::make_shared<TraceOptions>();
  CLI::App* command =
      app.add_subcommand("trace", "Write the simulated step of a plan file as a Chrome trace");
  command->add_option("plan", options->plan_path, "a plan file (from `foldplan estimate -o`)")
      ->required();
  command->add_option("-o,--output", options->output, "the trace file to write")->required();
  command->add_option("--ranks", options->ranks,
                      "ranks to show (default: the first rank of every pipeline stage)");
  command->callback([&chosen, options] { chosen = [options] { return run_trace(*options); }; });
}

} // namespace foldplan::cli
