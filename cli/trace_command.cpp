// `foldplan trace PLAN.json -o trace.json`: the simulated step as a Chrome trace (one track per
// rank and stream) that Perfetto and chrome://tracing open; --routing as for `simulate`, so the
// EP ranks' stragglers show.
#include <fmt/format.h>

#include "cli/command.hpp"
#include "core/errors.hpp"
#include "core/file_io.hpp"
#include "costmodel/cost_context.hpp"
#include "simulator/chrome_trace.hpp"
#include "simulator/event_simulation.hpp"
#include "simulator/op_timer.hpp"
#include "simulator/routed_lowering.hpp"

namespace foldplan::cli {
namespace {

struct TraceOptions {
  std::string plan_path;
  std::string output;
  std::string routing = "balanced";
  // Empty: the first rank of every pipeline stage (with skewed routing, and its busiest rank).
  std::vector<std::int64_t> ranks;
  bool json = false;
};

// Under skewed routing every EP rank has its own program, too many tracks to open: each stage's
// first rank, and its busiest one — the straggler the others wait for.
std::vector<std::int64_t> first_and_busiest_rank_of_each_stage(const Plan& plan,
                                                               const SimulationResult& simulated) {
  constexpr std::size_t kCompute = stream_index(Stream::compute);
  const std::int64_t stage_ranks = plan.parallel.world_size() / plan.parallel.pp;
  std::vector<std::int64_t> ranks;
  for (std::int64_t first = 0; first < plan.parallel.world_size(); first += stage_ranks) {
    std::int64_t busiest = first;
    for (std::int64_t rank = first + 1; rank < first + stage_ranks; ++rank) {
      if (simulated.ranks[static_cast<std::size_t>(rank)].busy_s[kCompute] >
          simulated.ranks[static_cast<std::size_t>(busiest)].busy_s[kCompute])
        busiest = rank;
    }
    ranks.push_back(first);
    if (busiest != first)
      ranks.push_back(busiest);
  }
  return ranks;
}

int run_trace(const TraceOptions& options) {
  const Plan plan = load_plan(options.plan_path);
  for (const std::int64_t rank : options.ranks) {
    if (rank < 0 || rank >= plan.gpus) {
      throw InputError("--ranks",
                       fmt::format("{} is not a rank of the plan's {} GPUs", rank, plan.gpus));
    }
  }
  const RoutingSpec routing = parse_routing_spec(options.routing);
  const CostContext context(plan.cluster, plan.gpus);
  const RoutedStep routed = lower_routed_plan(plan, routing);
  const StepProgram& program = routed.program;
  const CostModelOpTimer timer(context, program);
  const SimulationResult simulated = simulate_step(
      program, [&](const Op& op, std::int64_t rank) { return timer(op, rank); },
      {.record_timeline = true, .fold_interchangeable_ranks = timer.ranks_interchangeable()});
  const std::vector<std::int64_t> ranks =
      !options.ranks.empty()  ? options.ranks
      : routed.routed_experts ? first_and_busiest_rank_of_each_stage(plan, simulated)
                              : first_rank_of_each_program(program);
  write_file_atomically(options.output, chrome_trace(program, simulated, ranks).dump() + "\n");
  if (options.json) {
    const nlohmann::json json = {{"output", options.output},
                                 {"ranks", ranks},
                                 {"step_time_s", simulated.step_time_s},
                                 {"routing", routing.text}};
    fmt::print("{}\n", json.dump(2));
    return 0;
  }
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
  command
      ->add_option("--routing", options->routing,
                   "MoE routing: balanced, uniform, zipf:S, dirichlet:A or a histogram file")
      ->capture_default_str();
  command->add_option("--ranks", options->ranks,
                      "ranks to show (default: the first rank of every pipeline stage and, with "
                      "skewed routing, its busiest rank)");
  command->add_flag("--json", options->json, "print what was written as JSON");
  command->callback([&chosen, options] { chosen = [options] { return run_trace(*options); }; });
}

} // namespace foldplan::cli
