// The `foldplan` command: parses flags with CLI11 and hands each subcommand to the libraries.
// Input errors become one line on stderr and exit code 2; nothing else leaves main as a crash.
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/command.hpp"
#include "cli/parse_error_message.hpp"
#include "core/errors.hpp"

namespace {

constexpr int kInputErrorExit = 2;
constexpr int kInternalErrorExit = 3;

constexpr const char* kGuide =
    R"(foldplan plans how Mixture-of-Experts transformers are split across GPU clusters,
with MoE Parallel Folding (attention as TP x CP x DP x PP, MoE as ETP x EP x EDP x PP).

Everyday commands:
  foldplan search --model mixtral-8x22b --cluster dgx-h100 --gpus 128 --seq 4096 --gbs 256
                                      the fastest plans that fit, ranked, and why
  foldplan explain plan.json          where a plan's time and memory go; the next-best plans
  foldplan export plan.json --format megatron
                                      the Megatron-LM command (flags, environment) that runs it
  foldplan report --model mixtral-8x22b --gpus 128 --seq 4096 --gbs 256 -o report.html
                                      one HTML page: search space, breakdowns, timeline, traffic
  foldplan models                     the model presets and their sizes
  foldplan clusters                   the cluster presets
  foldplan estimate --model mixtral-8x22b --gpus 128 --tp 2 --pp 8 --ep 8 --etp 1
                                      step time, MFU and memory of one configuration
  foldplan simulate plan.json         one step of a plan file, op by op, on every rank
  foldplan run plan.json --layers 2   the plan's step on this machine's GPUs, measured vs predicted
  foldplan validate plan.json --layers 2 --trace t.json
                                      measured vs predicted per op class, with the relative error
  foldplan groups --gpus 128 --tp 2 --pp 8 --ep 8 --etp 1 --rank 0
                                      Megatron's rank groups for a configuration
  foldplan calibrate -o my-h100.json  this machine's GPUs measured into a file for --calibration
Run 'foldplan COMMAND --help' for a command's flags.
)";

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"foldplan: plan, simulate and validate MoE parallel folding"};
  app.set_version_flag("--version", std::string(FOLDPLAN_VERSION));
  app.require_subcommand(0, 1);
  app.footer(kGuide);

  foldplan::cli::CommandAction chosen;
  foldplan::cli::add_search_command(app, chosen);
  foldplan::cli::add_explain_command(app, chosen);
  foldplan::cli::add_export_command(app, chosen);
  foldplan::cli::add_models_command(app, chosen);
  foldplan::cli::add_clusters_command(app, chosen);
  foldplan::cli::add_groups_command(app, chosen);
  foldplan::cli::add_estimate_command(app, chosen);
  foldplan::cli::add_simulate_command(app, chosen);
  foldplan::cli::add_trace_command(app, chosen);
  foldplan::cli::add_run_command(app, chosen);
  foldplan::cli::add_validate_command(app, chosen);
  foldplan::cli::add_report_command(app, chosen);
  foldplan::cli::add_calibrate_command(app, chosen);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForVersion& version) {
    return app.exit(version);
  } catch (const CLI::ParseError& error) {
    fmt::print(stderr, "foldplan: error: {}\n", foldplan::cli::parse_error_message(app, error));
    return kInputErrorExit;
  }
  if (!chosen) {
    fmt::print("{}", kGuide);
    return 0;
  }
  try {
    return chosen();
  } catch (const foldplan::InputError& error) {
    fmt::print(stderr, "foldplan: error: {}\n", error.what());
    return kInputErrorExit;
  } catch (const std::exception& error) {
    fmt::print(stderr, "foldplan: internal error: {}\n", error.what());
    return kInternalErrorExit;
  }
}
