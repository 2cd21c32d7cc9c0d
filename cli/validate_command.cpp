// `foldplan validate PLAN.json`: runs the plan's step on the GPUs exactly as `foldplan run` does
// (cli/plan_execution.hpp) and answers whether the prediction holds: the step and every op class,
// measured beside predicted with the relative error (cli/step_validation.hpp); the same as JSON
// that `foldplan report --validation` draws; and, with --trace, one Chrome trace with the
// predicted and measured timelines of every rank program side by side.
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "cli/command.hpp"
#include "cli/plan_execution.hpp"
#include "cli/step_validation.hpp"
#include "cli/validation_trace.hpp"
#include "core/errors.hpp"
#include "core/file_io.hpp"

namespace foldplan::cli {
namespace {

struct ValidateOptions {
  PlanExecutionOptions execution;
  bool json = false;
  std::string output;
  std::string measured_output; // --measured: the raw foldplan.measured/1 file, as `run -o`
  std::string trace_output;
  std::string from; // --from: an earlier run's measurements, predicted again without a GPU
};

// Two outputs to one path would leave only the last; refused before anything runs.
void require_distinct_outputs(const ValidateOptions& options) {
  const std::vector<std::pair<const char*, const std::string*>> outputs = {
      {"-o", &options.output},
      {"--measured", &options.measured_output},
      {"--trace", &options.trace_output}};
  for (std::size_t first = 0; first < outputs.size(); ++first) {
    for (std::size_t second = first + 1; second < outputs.size(); ++second) {
      if (!outputs[first].second->empty() && *outputs[first].second == *outputs[second].second) {
        throw InputError(outputs[second].first,
                         fmt::format("{} is also {}'s file; give each output its own",
                                     *outputs[second].second, outputs[first].first));
      }
    }
  }
}

std::vector<std::string> report_validation(const ValidateOptions& options,
                                           const PlanExecution& execution) {
  const runtime::MeasuredStep& measured = execution.measured;
  const RunPrediction& prediction = execution.prediction;
  const StepValidation validation = compare_step(execution.program, measured, prediction);
  const ValidationSubject subject{.plan_path = options.execution.plan_path,
                                  .model = execution.plan.model.name,
                                  .layers = execution.plan.model.num_layers,
                                  .routing = execution.routing.text,
                                  .calibration = options.execution.calibration.empty()
                                                     ? prediction.calibration
                                                     : options.execution.calibration,
                                  .attention_note = prediction.attention_note};
  const std::string text = validation_to_json(validation, measured, subject).dump(2) + "\n";
  std::vector<std::string> written;
  if (!options.output.empty()) {
    write_file_atomically(options.output, text);
    written.push_back(options.output);
  }
  if (!options.measured_output.empty()) {
    write_file_atomically(options.measured_output,
                          runtime::measured_step_to_json(measured).dump(2) + "\n");
    written.push_back(options.measured_output);
  }
  if (!options.trace_output.empty()) {
    write_file_atomically(options.trace_output,
                          validation_trace(execution.program, measured, prediction).dump() + "\n");
    written.push_back(options.trace_output);
  }
  if (options.json) {
    fmt::print("{}", text);
    return written;
  }
  fmt::print("{}: {} ({} layers), routing {}, calibration {}\n", subject.plan_path, subject.model,
             subject.layers, subject.routing, subject.calibration);
  fmt::print("measured on {} x {}, median of {} steps after {} warm-up{}\n\n", measured.world_size,
             measured.device, measured.timed_steps, measured.warmup_steps,
             options.from.empty() ? "" : fmt::format(" (read from {})", options.from));
  fmt::print("{}", validation_table(validation));
  if (prediction.attention_note)
    fmt::print("note: {}\n", *prediction.attention_note);
  return written;
}

int run_validate(ValidateOptions options) {
  require_distinct_outputs(options);
  options.execution.record_timeline = !options.trace_output.empty();
  if (!options.from.empty()) {
    const PlanExecution execution = replay_plan(options.execution, options.from, "--from");
    for (const std::string& path : report_validation(options, execution)) {
      if (!options.json)
        fmt::print("wrote {}\n", path);
    }
    return 0;
  }
  return execute_and_report(
      options.execution, "validate", options.json,
      [&options](const PlanExecution& execution) { return report_validation(options, execution); });
}

} // namespace

void add_validate_command(CLI::App& app, CommandAction& chosen) {
  auto options = std::make_shared<ValidateOptions>();
  CLI::App* command = app.add_subcommand(
      "validate", "Run a plan's step on GPUs and report measured vs predicted, per op class");
  add_plan_execution_flags(*command, options->execution);
  command->add_option("--calibration", options->execution.calibration,
                      "predict with this calibration file from `foldplan calibrate` (default: the "
                      "shipped one)");
  command->add_flag("--json", options->json, "print the comparison as JSON");
  command->add_option("-o,--output", options->output,
                      "write the comparison (JSON, for `foldplan report --validation`) here");
  command->add_option("--measured", options->measured_output,
                      "write the raw measurements (as `foldplan run -o`) here");
  command->add_option("--trace", options->trace_output,
                      "write a Chrome trace of every rank program's predicted and measured "
                      "timelines, side by side");
  command->add_option("--from", options->from,
                      "compare an earlier run's measurements (a `foldplan run -o` or `validate "
                      "--measured` file) instead of running: no GPU needed, e.g. to predict them "
                      "again with another --calibration");
  command->callback([&chosen, options] { chosen = [options] { return run_validate(*options); }; });
}

} // namespace foldplan::cli
