// `foldplan run PLAN.json`: lowers the plan (optionally cut to --layers layers) to every rank's
// step program, exactly as `simulate` does, and executes it on the GPUs — threads on local GPUs or
// one process per GPU under mpirun/srun — then puts the measured times beside the cost model's,
// by op class, attention priced from our own kernel's measurements (cli/run_prediction.hpp). MoE
// models first run each MoE layer shape for real and check it against a CPU reference; a failed
// check fails the run.
#include <algorithm>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "cli/command.hpp"
#include "cli/layer_scaling.hpp"
#include "cli/run_prediction.hpp"
#include "cli/table.hpp"
#include "core/errors.hpp"
#include "core/file_io.hpp"
#include "core/units.hpp"
#include "costmodel/memory_model.hpp"
#include "parallel/rank_groups.hpp"
#include "runtime/executor.hpp"
#include "simulator/routed_lowering.hpp"

namespace foldplan::cli {
namespace {

constexpr int kCheckFailedExit = 1;

struct RunOptions {
  std::string plan_path;
  std::optional<std::int64_t> layers; // the plan's own when not given
  int steps = 3;
  int warmup = 1;
  int local_gpus = 0;
  std::string routing = "balanced";
  double timeout_s = 300;
  bool json = false;
  std::string output;
};

// The MoE layer the runtime runs for real, as the plan shapes it (every MoE layer of a model has
// the same shape, so one request; its EP groups are Megatron's).
std::vector<runtime::MoeLayerCheckRequest> moe_check_requests(const Plan& plan,
                                                              const RoutingSpec& routing) {
  if (!plan.model.is_moe())
    return {};
  const ParallelConfig& parallel = plan.parallel;
  const RankGroups groups = all_rank_groups(parallel, plan.options.folding);
  runtime::MoeLayerCheckRequest request{
      .tokens =
          plan.training.micro_batch_size * plan.training.seq_length / (parallel.tp * parallel.cp),
      .hidden = plan.model.hidden_size,
      .ffn_hidden = plan.model.moe.ffn_hidden_size,
      .experts = static_cast<int>(plan.model.moe.num_experts),
      .top_k = static_cast<int>(plan.model.moe.router_topk),
      .gated = plan.model.activation == Activation::swiglu,
      .capacity_factor = plan.options.capacity_factor.value_or(0.0),
      .pad_to_capacity = plan.options.pad_to_capacity,
      .drop_by_position = plan.options.drop_policy == DropPolicy::position,
      .routing_skew = routing.kind == RoutingKind::zipf ? routing.zipf_exponent : 0.0,
      .ep_groups = groups_named(groups.moe, "ep"),
      .etp_groups = parallel.etp > 1 ? groups_named(groups.moe, "etp")
                                     : std::vector<std::vector<std::int64_t>>{}};
  request.description = fmt::format("tokens {} hidden {} ffn {} experts {} top-{} EP {} ETP {}",
                                    request.tokens, request.hidden, request.ffn_hidden,
                                    request.experts, request.top_k, parallel.ep, parallel.etp);
  return {request};
}

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

bool print_checks(const std::vector<runtime::MoeCheckOutcome>& checks) {
  bool all_passed = true;
  if (!checks.empty())
    fmt::print("\nMoE layer checks ({}):\n", checks.front().layer);
  for (const runtime::MoeCheckOutcome& check : checks) {
    all_passed = all_passed && check.passed;
    fmt::print("  rank {} {} {}{}{}\n", check.rank, check.passed ? "PASS" : "FAIL", check.name,
               check.detail.empty() ? "" : ": ", check.detail);
  }
  return all_passed;
}

int run_run(const RunOptions& options) {
  if (options.steps <= 0)
    throw InputError("--steps", fmt::format("{} is not a positive integer", options.steps));
  if (options.warmup < 0)
    throw InputError("--warmup", fmt::format("{} is negative", options.warmup));
  if (!(options.timeout_s > 0))
    throw InputError("--timeout",
                     fmt::format("{} is not a positive number of seconds", options.timeout_s));
  Plan plan = load_plan(options.plan_path);
  if (options.layers)
    plan = scale_plan_layers(plan, *options.layers);
  const RoutingSpec routing = parse_routing_spec(options.routing);
  runtime::require_gpu_runtime();

  const RoutedStep routed = lower_routed_plan(plan, routing);
  const StepProgram& program = routed.program;
  const RunPrediction prediction = predict_run(plan, program);
  const MemoryBreakdown memory =
      peak_memory_per_gpu(plan.model, plan.parallel, plan.training, plan.options);

  runtime::ExecutorOptions executor{.local_gpus = options.local_gpus,
                                    .warmup_steps = options.warmup,
                                    .timed_steps = options.steps,
                                    .timeout_s = options.timeout_s,
                                    .predicted_peak_bytes = memory.total_bytes(),
                                    .moe_checks = moe_check_requests(plan, routing),
                                    .environment = {}};
  runtime::ExecutionResult result;
  try {
    result = runtime::execute_step_program(program, executor);
  } catch (const runtime::ExecutionError& error) {
    fmt::print(stderr, "foldplan: run failed: {}\n", error.what());
    return kCheckFailedExit;
  }
  const bool checks_passed = std::all_of(result.moe_checks.begin(), result.moe_checks.end(),
                                         [](const auto& check) { return check.passed; });
  if (!result.reporting) // under a launcher rank 0 reports; the others only fail on their checks
    return checks_passed ? 0 : kCheckFailedExit;

  runtime::MeasuredStep measured = runtime::summarize_measurements(
      program, result.ranks, result.device, options.warmup, options.steps);
  measured.moe_checks = result.moe_checks;
  nlohmann::json predicted_programs = nlohmann::json::array();
  for (const auto& times : prediction.op_time_s) {
    nlohmann::json entry = nlohmann::json::object();
    for (const auto& [id, seconds] : times)
      entry[std::to_string(id)] = seconds;
    predicted_programs.push_back(std::move(entry));
  }
  measured.metadata = {{"plan", options.plan_path},
                       {"model", plan.model.name},
                       {"layers", plan.model.num_layers},
                       {"routing", routing.text},
                       {"predicted_step_time_s", prediction.step_time_s},
                       {"predicted_peak_memory_bytes", memory.total_bytes()},
                       {"predicted_op_time_s", std::move(predicted_programs)}};
  if (prediction.attention_note)
    measured.metadata["predicted_attention_note"] = *prediction.attention_note;
  const std::string text = runtime::measured_step_to_json(measured).dump(2) + "\n";
  if (!options.output.empty())
    write_file_atomically(options.output, text);
  if (options.json) {
    fmt::print("{}", text);
  } else {
    fmt::print("{}: {} ({} layers), routing {}\n", options.plan_path, plan.model.name,
               plan.model.num_layers, routing.text);
    print_table(program, measured, prediction.op_time_s, prediction.step_time_s);
    if (prediction.attention_note)
      fmt::print("note: {}\n", *prediction.attention_note);
  }
  const bool passed =
      print_checks(options.json ? std::vector<runtime::MoeCheckOutcome>{} : measured.moe_checks) &&
      checks_passed;
  if (!options.output.empty() && !options.json)
    fmt::print("wrote {}\n", options.output);
  if (!passed) {
    fmt::print(stderr, "foldplan: run failed: a MoE layer check failed\n");
    return kCheckFailedExit;
  }
  return 0;
}

} // namespace

void add_run_command(CLI::App& app, CommandAction& chosen) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* command = app.add_subcommand(
      "run", "Execute a plan's step on GPUs (NCCL, cuBLAS) and put measured beside predicted");
  command->add_option("plan", options->plan_path, "a plan file (from `foldplan estimate -o`)")
      ->required();
  command->add_option("--layers", options->layers,
                      "run the model cut to this many layers (per-layer shapes kept)");
  command->add_option("--steps", options->steps, "timed steps")->capture_default_str();
  command->add_option("--warmup", options->warmup, "warm-up steps before timing")
      ->capture_default_str();
  command->add_option("--local-gpus", options->local_gpus,
                      "ranks to run as threads on this node's GPUs (default 1; leave out under "
                      "mpirun/srun, one process per GPU)");
  command
      ->add_option("--routing", options->routing,
                   "MoE routing: balanced, uniform, zipf:S, dirichlet:A or a histogram file")
      ->capture_default_str();
  command
      ->add_option("--timeout", options->timeout_s,
                   "seconds a step (or communicator set-up) may take before every rank aborts")
      ->capture_default_str();
  command->add_flag("--json", options->json, "print the measurements as JSON");
  command->add_option("-o,--output", options->output, "write the measurements (JSON) here");
  command->callback([&chosen, options] { chosen = [options] { return run_run(*options); }; });
}

} // namespace foldplan::cli
