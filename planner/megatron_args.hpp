// Megatron-LM export: the argument list, environment and launch command that run a plan with
// Megatron-LM's pretrain_gpt.py, spelled and checked as megatron/training/arguments.py and
// TransformerConfig spell and check them.
#pragma once

#include <string>
#include <vector>

#include "parallel/plan.hpp"

namespace foldplan {

// One Megatron flag and its values; a switch such as --sequence-parallel has none.
struct MegatronFlag {
  std::string name;                // "--tensor-model-parallel-size"
  std::vector<std::string> values; // {"2"}

  bool operator==(const MegatronFlag&) const = default;
};

// The flags that run `plan`, in stable groups: model shape, MoE, parallel sizes, batch,
// recompute, optimizer and overlap, precision, then a short synthetic run (mock data through
// NullTokenizer, a few iterations) that the user replaces with their data and schedule to train.
// Validates the plan first; a plan Megatron would reject is an InputError naming the field and the
// rule, never a command that fails at start-up.
std::vector<MegatronFlag> megatron_flags(const Plan& plan);

// The same flags as argv holds them: each flag, then each of its values, one string per token
// ({"--tensor-model-parallel-size", "2", "--sequence-parallel", ...}).
std::vector<std::string> megatron_arguments(const Plan& plan);

// An environment variable the run needs, and why.
struct EnvironmentVariable {
  std::string name;
  std::string value;
  std::string reason;

  bool operator==(const EnvironmentVariable&) const = default;
};

// What Megatron needs in the environment for this plan (CUDA_DEVICE_MAX_CONNECTIONS).
std::vector<EnvironmentVariable> megatron_environment(const Plan& plan);

// The flags as shell continuation lines: "  --flag value \" for all but the last, values quoted
// where the shell would read them otherwise.
std::string render_continuation_lines(const std::vector<MegatronFlag>& flags);

// A runnable script: comments that say what the plan is, `export` lines for the environment, and
// the torchrun launch of pretrain_gpt.py with every flag on its own continuation line.
std::string render_megatron_command(const Plan& plan);

} // namespace foldplan
