// Runs the real `foldplan` binary (FOLDPLAN_BINARY) for end-to-end tests.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

namespace foldplan::testing_cli {

struct CommandResult {
  int exit_code = -1;
  std::string output; // stdout and stderr together
};

inline CommandResult run_foldplan(const std::string& arguments) {
  const std::string command = std::string(FOLDPLAN_BINARY) + " " + arguments + " 2>&1";
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr)
    return result;
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr)
    result.output += buffer.data();
  const int status = pclose(pipe);
  // A signal (a crash) reads as -1, never as an exit code.
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// An input error is exactly one line, prefixed, with exit code 2.
inline void expect_input_error(const std::string& arguments, const std::string& expected_message) {
  const CommandResult result = run_foldplan(arguments);
  EXPECT_EQ(result.exit_code, 2) << arguments << "\n" << result.output;
  EXPECT_EQ(result.output, "foldplan: error: " + expected_message + "\n") << arguments;
}

} // namespace foldplan::testing_cli
