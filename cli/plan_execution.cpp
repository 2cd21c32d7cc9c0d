#include "cli/plan_execution.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "cli/layer_scaling.hpp"
#include "core/errors.hpp"
#include "core/file_io.hpp"
#include "costmodel/memory_model.hpp"
#include "parallel/rank_groups.hpp"
#include "runtime/executor.hpp"
#include "simulator/routed_lowering.hpp"

namespace foldplan::cli {
namespace {

constexpr int kRunFailedExit = 1;

void print_moe_checks(const std::vector<runtime::MoeCheckOutcome>& checks) {
  if (!checks.empty())
    fmt::print("\nMoE layer checks ({}):\n", checks.front().layer);
  for (const runtime::MoeCheckOutcome& check : checks) {
    fmt::print("  rank {} {} {}{}{}\n", check.rank, check.passed ? "PASS" : "FAIL", check.name,
               check.detail.empty() ? "" : ": ", check.detail);
  }
}

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

nlohmann::json execution_metadata(const PlanExecutionOptions& options,
                                  const PlanExecution& execution, double peak_memory_bytes) {
  nlohmann::json predicted_programs = nlohmann::json::array();
  for (const auto& times : execution.prediction.op_time_s) {
    nlohmann::json entry = nlohmann::json::object();
    for (const auto& [id, seconds] : times)
      entry[std::to_string(id)] = seconds;
    predicted_programs.push_back(std::move(entry));
  }
  nlohmann::json metadata = {{"plan", options.plan_path},
                             {"model", execution.plan.model.name},
                             {"layers", execution.plan.model.num_layers},
                             {"routing", execution.routing.text},
                             {"predicted_step_time_s", execution.prediction.step_time_s},
                             {"predicted_peak_memory_bytes", peak_memory_bytes},
                             {"predicted_op_time_s", std::move(predicted_programs)}};
  if (execution.prediction.attention_note)
    metadata["predicted_attention_note"] = *execution.prediction.attention_note;
  if (!options.calibration.empty())
    metadata["calibration"] = options.calibration;
  return metadata;
}

// The plan cut to `layers`, lowered with `routing` and priced: what running and replaying share.
PlanExecution lower_and_predict(const PlanExecutionOptions& options,
                                const std::optional<std::int64_t>& layers,
                                const std::string& routing) {
  PlanExecution execution{.plan = load_plan(options.plan_path)};
  if (layers)
    execution.plan = scale_plan_layers(execution.plan, *layers);
  execution.routing = parse_routing_spec(routing);
  RunPredictionOptions prediction_options{.record_timeline = options.record_timeline};
  if (!options.calibration.empty())
    prediction_options.calibration = load_calibration(options.calibration);
  execution.program = lower_routed_plan(execution.plan, execution.routing).program;
  execution.prediction = predict_run(execution.plan, execution.program, prediction_options);
  return execution;
}

} // namespace

void add_plan_execution_flags(CLI::App& command, PlanExecutionOptions& options) {
  command.add_option("plan", options.plan_path, "a plan file (from `foldplan estimate -o`)")
      ->required();
  command.add_option("--layers", options.layers,
                     "run the model cut to this many layers (per-layer shapes kept)");
  command.add_option("--steps", options.steps, "timed steps")->capture_default_str();
  command.add_option("--warmup", options.warmup, "warm-up steps before timing")
      ->capture_default_str();
  command.add_option("--local-gpus", options.local_gpus,
                     "ranks to run as threads on this node's GPUs (default 1; leave out under "
                     "mpirun/srun, one process per GPU)");
  command
      .add_option("--routing", options.routing,
                  "MoE routing: balanced, uniform, zipf:S, dirichlet:A or a histogram file")
      ->capture_default_str();
  command
      .add_option("--timeout", options.timeout_s,
                  "seconds a step (or communicator set-up) may take before every rank aborts")
      ->capture_default_str();
}

PlanExecution execute_plan(const PlanExecutionOptions& options, const std::string& command) {
  if (options.steps <= 0)
    throw InputError("--steps", fmt::format("{} is not a positive integer", options.steps));
  if (options.warmup < 0)
    throw InputError("--warmup", fmt::format("{} is negative", options.warmup));
  if (!(options.timeout_s > 0))
    throw InputError("--timeout",
                     fmt::format("{} is not a positive number of seconds", options.timeout_s));
  PlanExecution execution = lower_and_predict(options, options.layers, options.routing);
  const Plan& plan = execution.plan;
  runtime::require_gpu_runtime(command);

  const MemoryBreakdown memory =
      peak_memory_per_gpu(plan.model, plan.parallel, plan.training, plan.options);
  const runtime::ExecutorOptions executor{.local_gpus = options.local_gpus,
                                          .warmup_steps = options.warmup,
                                          .timed_steps = options.steps,
                                          .timeout_s = options.timeout_s,
                                          .predicted_peak_bytes = memory.total_bytes(),
                                          .moe_checks = moe_check_requests(plan, execution.routing),
                                          .environment = {}};
  const runtime::ExecutionResult result =
      runtime::execute_step_program(execution.program, executor);
  execution.checks_passed = std::all_of(result.moe_checks.begin(), result.moe_checks.end(),
                                        [](const auto& check) { return check.passed; });
  execution.reporting = result.reporting;
  if (!result.reporting)
    return execution;
  execution.measured = runtime::summarize_measurements(
      execution.program, result.ranks, result.device, options.warmup, options.steps);
  execution.measured.moe_checks = result.moe_checks;
  execution.measured.metadata = execution_metadata(options, execution, memory.total_bytes());
  return execution;
}

PlanExecution replay_plan(const PlanExecutionOptions& options, const std::string& measured_path,
                          const std::string& measured_flag) {
  runtime::MeasuredStep ran_step = runtime::measured_step_from_json(read_json_file(measured_path));
  const nlohmann::json& metadata = ran_step.metadata;
  const std::string field = measured_flag + " " + measured_path;
  std::optional<std::int64_t> layers = options.layers;
  if (const auto ran = metadata.find("layers"); ran != metadata.end() && ran->is_number_integer()) {
    if (layers && *layers != ran->get<std::int64_t>())
      throw InputError("--layers", fmt::format("{} is not the {} layers {} ran", *layers,
                                               ran->get<std::int64_t>(), measured_path));
    layers = ran->get<std::int64_t>();
  }
  std::string routing = options.routing;
  if (const auto ran = metadata.find("routing"); ran != metadata.end() && ran->is_string()) {
    // "balanced" is also the flag's default: only another value contradicts the file.
    if (routing != "balanced" && routing != ran->get<std::string>())
      throw InputError("--routing", fmt::format("{} is not the routing {} ran with ({})", routing,
                                                measured_path, ran->get<std::string>()));
    routing = ran->get<std::string>();
  }
  PlanExecution execution = lower_and_predict(options, layers, routing);
  execution.measured = std::move(ran_step);
  const runtime::MeasuredStep& measured = execution.measured;

  // The measured programs must be this program's: same ranks, every op timed.
  const std::string mismatch =
      "was measured with another plan, --layers or --routing than " + options.plan_path;
  if (measured.world_size != execution.program.world_size ||
      measured.programs.size() != execution.program.programs.size())
    throw InputError(field, mismatch);
  for (std::size_t index = 0; index < measured.programs.size(); ++index) {
    const RankProgram& rank_program = execution.program.programs[index];
    const runtime::MeasuredProgram& measured_program = measured.programs[index];
    if (measured_program.ranks != rank_program.ranks ||
        measured_program.op_time_s.size() != rank_program.ops.size())
      throw InputError(field, mismatch);
    for (const Op& op : rank_program.ops) {
      if (!measured_program.op_time_s.contains(op.id))
        throw InputError(field, mismatch);
    }
  }
  execution.checks_passed = std::all_of(measured.moe_checks.begin(), measured.moe_checks.end(),
                                        [](const auto& check) { return check.passed; });
  return execution;
}

int execute_and_report(const PlanExecutionOptions& options, const std::string& verb, bool json,
                       const ExecutionReport& report) {
  PlanExecution execution;
  try {
    execution = execute_plan(options, "foldplan " + verb);
  } catch (const runtime::ExecutionError& error) {
    fmt::print(stderr, "foldplan: {} failed: {}\n", verb, error.what());
    return kRunFailedExit;
  }
  // Under a launcher rank 0 reports; the others only fail on their checks.
  if (!execution.reporting)
    return execution.checks_passed ? 0 : kRunFailedExit;
  const std::vector<std::string> written = report(execution);
  if (!json) {
    print_moe_checks(execution.measured.moe_checks);
    for (const std::string& path : written)
      fmt::print("wrote {}\n", path);
  }
  if (!execution.checks_passed) {
    fmt::print(stderr, "foldplan: {} failed: a MoE layer check failed\n", verb);
    return kRunFailedExit;
  }
  return 0;
}

} // namespace foldplan::cli
