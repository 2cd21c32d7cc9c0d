// `foldplan simulate PLAN.json`: lowers the plan to every stage's step program, plays the programs
// against each other with the cost model as the clock, and puts the result beside the analytic
// estimate. MoE routing is simulated as well (--routing) for the dropped-token fraction and the
// load of the busiest expert rank.
#include <array>

#include <fmt/format.h>

#include "cli/command.hpp"
#include "cli/table.hpp"
#include "core/units.hpp"
#include "costmodel/cost_context.hpp"
#include "costmodel/step_estimate.hpp"
#include "models/model_flops.hpp"
#include "simulator/dispatch_simulation.hpp"
#include "simulator/event_simulation.hpp"
#include "simulator/lowering.hpp"
#include "simulator/op_timer.hpp"

namespace foldplan::cli {
namespace {

struct SimulateOptions {
  std::string plan_path;
  std::string routing = "balanced";
  bool json = false;
};

constexpr std::array kStreams = {Stream::compute, Stream::tp_comm, Stream::cp_comm,
                                 Stream::ep_comm, Stream::pp_comm, Stream::dp_comm};

int run_simulate(const SimulateOptions& options) {
  const Plan plan = load_plan(options.plan_path);
  const RoutingSpec routing = parse_routing_spec(options.routing);
  const CostContext context(plan.cluster, plan.gpus);

  // MoE routing first: its load factor also drives the analytic estimate beside the simulation.
  double load_factor = 1.0;
  double dropped_fraction = 0.0;
  if (plan.model.is_moe()) {
    constexpr int kSampledMicroBatches = 2;
    const DispatchResult dispatch = simulate_dispatch(plan.model, plan.parallel, plan.training,
                                                      plan.options, routing, kSampledMicroBatches);
    load_factor = std::max(1.0, dispatch.max_load_factor);
    dropped_fraction = dispatch.dropped_fraction;
  }
  const StepProgram program = lower_plan(plan);
  const CostModelOpTimer timer(context, program);
  const SimulationResult simulated =
      simulate_step(program, [&](const Op& op, std::int64_t rank) { return timer(op, rank); });
  const StepEstimate analytic = estimate_step(context, plan, load_factor);

  const double flops = megatron_flops_per_step(plan.model, plan.training.seq_length,
                                               plan.training.global_batch_size, plan.parallel.tp);
  const double mfu = flops / (simulated.step_time_s * static_cast<double>(plan.gpus) *
                              plan.cluster.gpu.bf16_flops);
  if (options.json) {
    nlohmann::json exposed = nlohmann::json::object();
    for (const Stream stream : kStreams) {
      if (stream == Stream::compute)
        continue;
      exposed[std::string(stream_name(stream))] =
          simulated.critical_exposed_s[stream_index(stream)];
    }
    const nlohmann::json json = {
        {"step_time_s", simulated.step_time_s},
        {"mfu", mfu},
        {"bubble_fraction", simulated.ranks[simulated.critical_rank].bubble_fraction},
        {"dropped_token_fraction", dropped_fraction},
        {"expert_load_factor", load_factor},
        {"peak_memory_bytes", analytic.prediction.peak_memory_bytes},
        {"exposed_communication_s", exposed},
        {"analytic_step_time_s", analytic.prediction.step_time_s},
        {"ops_per_rank", program.programs.front().ops.size()},
    };
    fmt::print("{}\n", json.dump(2));
    return 0;
  }
  fmt::print("{}: {} on {} x {}, routing {}\n", options.plan_path, plan.model.name, plan.gpus,
             plan.cluster.gpu.name, routing.text);
  fmt::print("simulated step {}   MFU {:.1f}%   critical rank {}   compute idle {:.1f}% "
             "(pipeline bubble and exposed communication)\n",
             units::format_time(simulated.step_time_s), 100 * mfu, simulated.critical_rank,
             100 * simulated.ranks[simulated.critical_rank].bubble_fraction);
  fmt::print("analytic estimate {} ({:+.1f}%): the estimate paces the pipeline by its slowest "
             "stage; the simulation plays every op\n",
             units::format_time(analytic.prediction.step_time_s),
             100 * (analytic.prediction.step_time_s / simulated.step_time_s - 1));
  if (plan.model.is_moe()) {
    fmt::print("MoE routing: busiest expert rank {:.2f}x the mean, {:.2f}% of tokens dropped "
               "(the event simulation plays balanced routing; the estimate uses the load)\n",
               load_factor, 100 * dropped_fraction);
  }
  Table table(
      {{"stream (critical rank)", Align::left}, {"busy", Align::right}, {"exposed", Align::right}});
  const RankSimulation& critical = simulated.ranks[simulated.critical_rank];
  for (const Stream stream : kStreams) {
    const std::size_t index = stream_index(stream);
    if (critical.busy_s[index] <= 0)
      continue;
    table.add_row(
        {std::string(stream_name(stream)), units::format_time(critical.busy_s[index]),
         stream == Stream::compute ? "-" : units::format_time(critical.exposed_s[index])});
  }
  fmt::print("\n{}", table.render());
  return 0;
}

} // namespace

void add_simulate_command(CLI::App& app, CommandAction& chosen) {
  auto options = std::make_shared<SimulateOptions>();
  CLI::App* command = app.add_subcommand(
      "simulate", "Simulate one step of a plan file op by op (event simulation of every rank)");
  command->add_option("plan", options->plan_path, "a plan file (from `foldplan estimate -o`)")
      ->required();
  command
      ->add_option("--routing", options->routing,
                   "MoE routing: balanced, uniform, zipf:S, dirichlet:A or a histogram file")
      ->capture_default_str();
  command->add_flag("--json", options->json, "print the summary as JSON");
  command->callback([&chosen, options] { chosen = [options] { return run_simulate(*options); }; });
}

} // namespace foldplan::cli
