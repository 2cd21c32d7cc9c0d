// The one line a command-line mistake prints: CLI11's message, plus the fix when there is an
// obvious one — the closest flag of the chosen command, or the closest command.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace foldplan::cli {

// "The following argument was not expected: --gpu; did you mean '--gpus'?"
std::string parse_error_message(CLI::App& app, const CLI::ParseError& error);

} // namespace foldplan::cli
