// Runs the real `foldplan` binary (FOLDPLAN_BINARY) for end-to-end tests.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "runtime/executor.hpp"

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

// `foldplan <command> <plan> --layers 2` where nothing can run it: in a build without CUDA (CI's)
// the one-line refusal naming the command; with CUDA but no visible GPU the GPU-count refusal.
// Skips the test where a GPU is visible.
inline void expect_gpu_refusal(const std::string& command, const std::string& plan) {
  const std::string arguments = command + " " + plan + " --layers 2";
  if (!runtime::runtime_has_gpu_support()) {
    expect_input_error(arguments, "foldplan " + command +
                                      ": this build has no CUDA/NCCL runtime (CMake found no CUDA "
                                      "toolkit with cuBLAS and NCCL); rebuild where they are "
                                      "installed");
    return;
  }
  const CommandResult result = run_foldplan(arguments);
  if (result.output.find("0 visible") == std::string::npos)
    GTEST_SKIP() << "a GPU is visible: the refusal is for machines without one";
  expect_input_error(arguments, "--local-gpus: 1 GPU(s) needed but 0 visible");
}

// Writes the plan `foldplan estimate <estimate_flags> -o` makes to a fresh file in the test
// temp dir named `name`, and returns its path.
inline std::string write_estimated_plan(const std::string& name,
                                        const std::string& estimate_flags) {
  const std::string path = ::testing::TempDir() + name;
  std::remove(path.c_str());
  const CommandResult result = run_foldplan("estimate " + estimate_flags + " --json -o " + path);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return path;
}

// The JSON a command prints with --json (the arguments include the command name).
inline nlohmann::json run_json(const std::string& arguments) {
  const CommandResult result = run_foldplan(arguments + " --json");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return nlohmann::json::parse(result.output);
}

} // namespace foldplan::testing_cli
