// How a subcommand plugs into the `foldplan` program: it registers its flags on the CLI11 app and,
// when chosen, leaves the action to run after parsing (so input errors surface in one place).
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace foldplan::cli {

// Runs the chosen command; returns the process exit code.
using CommandAction = std::function<int()>;

void add_search_command(CLI::App& app, CommandAction& chosen);
void add_explain_command(CLI::App& app, CommandAction& chosen);
void add_export_command(CLI::App& app, CommandAction& chosen);
void add_models_command(CLI::App& app, CommandAction& chosen);
void add_clusters_command(CLI::App& app, CommandAction& chosen);
void add_groups_command(CLI::App& app, CommandAction& chosen);
void add_estimate_command(CLI::App& app, CommandAction& chosen);
void add_simulate_command(CLI::App& app, CommandAction& chosen);
void add_trace_command(CLI::App& app, CommandAction& chosen);
void add_run_command(CLI::App& app, CommandAction& chosen);
void add_validate_command(CLI::App& app, CommandAction& chosen);
void add_report_command(CLI::App& app, CommandAction& chosen);
void add_calibrate_command(CLI::App& app, CommandAction& chosen);

} // namespace foldplan::cli
