// `foldplan export PLAN.json --format megatron`: the plan as a runnable Megatron-LM launch script
// (or, with --json, its argument list and environment), on stdout or written atomically with -o.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "core/errors.hpp"
#include "core/file_io.hpp"
#include "planner/megatron_args.hpp"

namespace foldplan::cli {
namespace {

struct ExportOptions {
  std::string plan_path;
  std::string format = "megatron";
  std::string output;
  bool json = false;
};

nlohmann::json export_json(const Plan& plan) {
  nlohmann::json environment = nlohmann::json::object();
  for (const EnvironmentVariable& variable : megatron_environment(plan))
    environment[variable.name] = variable.value;
  return {{"arguments", megatron_arguments(plan)}, {"environment", environment}};
}

int run_export(const ExportOptions& options) {
  // Only Megatron-LM for now; the flag leaves room for other launchers.
  if (options.format != "megatron") {
    throw InputError("--format", fmt::format("\"{}\" is not one of megatron", options.format));
  }
  const Plan plan = load_plan(options.plan_path);
  const std::string text =
      options.json ? export_json(plan).dump(2) + "\n" : render_megatron_command(plan);
  if (options.output.empty()) {
    fmt::print("{}", text);
    return 0;
  }
  write_file_atomically(options.output, text);
  fmt::print("wrote {}: {} for {} on {} GPUs\n", options.output,
             options.json ? "Megatron-LM arguments as JSON" : "Megatron-LM launch script",
             plan.model.name, plan.gpus);
  return 0;
}

} // namespace

void add_export_command(CLI::App& app, CommandAction& chosen) {
  auto options = std::make_shared<ExportOptions>();
  CLI::App* command = app.add_subcommand(
      "export", "Turn a plan file into a runnable Megatron-LM command (flags and environment)");
  command->add_option("plan", options->plan_path, "a plan file (from `foldplan estimate -o`)")
      ->required();
  command->add_option("--format", options->format, "what to export: megatron")
      ->capture_default_str();
  command->add_option("-o,--output", options->output,
                      "write here (atomically) instead of standard output");
  command->add_flag("--json", options->json,
                    "print {\"arguments\": [...], \"environment\": {...}} instead of a script");
  command->callback([&chosen, options] { chosen = [options] { return run_export(*options); }; });
}

} // namespace foldplan::cli
