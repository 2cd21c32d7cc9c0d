// `foldplan simulate PLAN.json`: lowers the plan to every rank's step program under the chosen MoE
// routing (--routing: each EP rank gets its own all-to-all splits and expert rows), plays the
// programs against each other with the cost model as the clock, and puts the result beside the
// analytic estimate, cost term by cost term, saying why they differ where they differ much.
#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "cli/command.hpp"
#include "cli/table.hpp"
#include "core/units.hpp"
#include "costmodel/cost_context.hpp"
#include "costmodel/step_estimate.hpp"
#include "models/model_flops.hpp"
#include "simulator/estimate_comparison.hpp"
#include "simulator/event_simulation.hpp"
#include "simulator/op_timer.hpp"
#include "simulator/routed_lowering.hpp"

namespace foldplan::cli {
namespace {

struct SimulateOptions {
  std::string plan_path;
  std::string routing = "balanced";
  bool json = false;
};

constexpr std::array kStreams = {Stream::compute, Stream::tp_comm, Stream::cp_comm,
                                 Stream::ep_comm, Stream::pp_comm, Stream::dp_comm};

// The estimate's expert load: the busiest rank over the mean in the first micro-batches sampled,
// as the estimate has always been given it (more samples would only raise the maximum).
double estimate_load_factor(const DispatchResult& dispatch) {
  double load_factor = 1.0;
  for (const LayerDispatch& sample : dispatch.samples) {
    if (sample.micro_batch < kBalancedSampledMicroBatches)
      load_factor = std::max(load_factor, sample.load_factor);
  }
  return load_factor;
}

// The spread of compute among the ranks of one stage: routing skew shows here.
struct StageSpread {
  std::int64_t stage = 0;
  double least_s = 0, most_s = 0;
  std::int64_t busiest_rank = 0;
};

StageSpread compute_spread(const Plan& plan, const SimulationResult& simulated) {
  const std::int64_t stage_ranks = plan.parallel.world_size() / plan.parallel.pp;
  StageSpread spread{.stage = simulated.critical_rank / stage_ranks};
  const std::int64_t first = spread.stage * stage_ranks;
  spread.least_s = spread.most_s =
      simulated.ranks[static_cast<std::size_t>(first)].busy_s[stream_index(Stream::compute)];
  spread.busiest_rank = first;
  for (std::int64_t rank = first; rank < first + stage_ranks; ++rank) {
    const double busy =
        simulated.ranks[static_cast<std::size_t>(rank)].busy_s[stream_index(Stream::compute)];
    spread.least_s = std::min(spread.least_s, busy);
    if (busy > spread.most_s) {
      spread.most_s = busy;
      spread.busiest_rank = rank;
    }
  }
  return spread;
}

void print_comparison(const EstimateComparison& comparison) {
  fmt::print("\nbeside the estimate: rank {}, the busiest of stage {} (the estimate's critical "
             "stage)\n",
             comparison.compared_rank, comparison.estimated_critical_stage);
  Table table({{"cost term", Align::left},
               {"simulated", Align::right},
               {"estimate", Align::right},
               {"difference", Align::right}});
  for (const TermComparison& term : comparison.terms) {
    if (term.simulated_s == 0 && term.estimated_s == 0)
      continue;
    const double difference = term.difference_s();
    table.add_row({term.term, units::format_time(term.simulated_s),
                   units::format_time(term.estimated_s),
                   (difference < 0 ? "-" : "+") + units::format_time(std::abs(difference))});
  }
  fmt::print("{}", table.render());
  bool any = false;
  for (const TermComparison& term : comparison.terms) {
    if (term.reason.empty())
      continue;
    if (!any)
      fmt::print("\nwhere they differ by {:.0f}% of the step or more:\n",
                 100 * kNotableDifferenceShare);
    any = true;
    fmt::print("  {}: simulation {} vs estimate {}: {}\n", term.term,
               units::format_time(term.simulated_s), units::format_time(term.estimated_s),
               term.reason);
  }
}

int run_simulate(const SimulateOptions& options) {
  const Plan plan = load_plan(options.plan_path);
  const RoutingSpec routing = parse_routing_spec(options.routing);
  const CostContext context(plan.cluster, plan.gpus);

  const RoutedStep routed = lower_routed_plan(plan, routing);
  const StepProgram& program = routed.program;
  const double load_factor = routed.dispatch ? estimate_load_factor(*routed.dispatch) : 1.0;
  const double dropped_fraction = routed.dispatch ? routed.dispatch->dropped_fraction : 0.0;
  const CostModelOpTimer cost_model(context, program);
  const OpTimer timer = [&](const Op& op, std::int64_t rank) { return cost_model(op, rank); };
  const SimulationResult simulated = simulate_step(
      program, timer, {.fold_interchangeable_ranks = cost_model.ranks_interchangeable()});
  const StepEstimate analytic = estimate_step(context, plan, load_factor);
  const EstimateComparison comparison =
      compare_with_estimate({.plan = plan,
                             .program = program,
                             .simulated = simulated,
                             .timer = timer,
                             .estimate = analytic,
                             .routed_experts = routed.routed_experts,
                             .expert_load_factor = load_factor});

  const double flops = megatron_flops_per_step(plan.model, plan.training.seq_length,
                                               plan.training.global_batch_size, plan.parallel.tp);
  const double mfu = flops / (simulated.step_time_s * static_cast<double>(plan.gpus) *
                              plan.cluster.gpu.bf16_flops);
  const RankSimulation& critical =
      simulated.ranks[static_cast<std::size_t>(simulated.critical_rank)];
  const StageSpread spread = compute_spread(plan, simulated);
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
        {"bubble_fraction", critical.bubble_fraction},
        {"dropped_token_fraction", dropped_fraction},
        {"expert_load_factor", load_factor},
        {"routing", routing.text},
        {"routed_experts", routed.routed_experts},
        {"programs", program.programs.size()},
        {"critical_rank", simulated.critical_rank},
        {"critical_stage_compute_spread_s",
         {{"stage", spread.stage}, {"least", spread.least_s}, {"most", spread.most_s}}},
        {"peak_memory_bytes", analytic.prediction.peak_memory_bytes},
        {"exposed_communication_s", exposed},
        {"analytic_step_time_s", analytic.prediction.step_time_s},
        {"estimate_comparison", estimate_comparison_to_json(comparison)},
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
             100 * critical.bubble_fraction);
  fmt::print("analytic estimate {} ({:+.1f}%)\n",
             units::format_time(analytic.prediction.step_time_s),
             100 * (analytic.prediction.step_time_s / simulated.step_time_s - 1));
  if (plan.model.is_moe()) {
    fmt::print("MoE routing: busiest expert rank {:.2f}x the mean (the estimate's load), {:.2f}% "
               "of tokens dropped\n",
               load_factor, 100 * dropped_fraction);
    if (routed.routed_experts) {
      fmt::print("the simulation gives every EP rank its own routed rows ({} programs): on stage "
                 "{} compute ranges {} to {}, busiest rank {}\n",
                 program.programs.size(), spread.stage, units::format_time(spread.least_s),
                 units::format_time(spread.most_s), spread.busiest_rank);
    }
  }
  Table table(
      {{"stream (critical rank)", Align::left}, {"busy", Align::right}, {"exposed", Align::right}});
  for (const Stream stream : kStreams) {
    const std::size_t index = stream_index(stream);
    if (critical.busy_s[index] <= 0)
      continue;
    table.add_row(
        {std::string(stream_name(stream)), units::format_time(critical.busy_s[index]),
         stream == Stream::compute ? "-" : units::format_time(critical.exposed_s[index])});
  }
  fmt::print("\n{}", table.render());
  print_comparison(comparison);
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
