// The flags that describe one configuration (model, cluster, batch, parallel sizes, options),
// shared by the commands that evaluate a single plan, and the Plan they build.
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "parallel/plan.hpp"

namespace foldplan::cli {

struct PlanFlags {
  std::string model = "mixtral-8x22b";
  std::string cluster = "dgx-h100";
  std::int64_t gpus = 128;
  TrainingShape training{.seq_length = 4096, .global_batch_size = 256, .micro_batch_size = 1};
  ParallelSizes sizes;
  std::int64_t etp = 0; // 0: not given
  bool no_folding = false;
  std::string recompute = "none";
  std::string dispatcher = "alltoall";
  double capacity_factor = 0; // 0: dropless
  bool pad_to_capacity = false;
  std::string fp8; // "", "tensorwise" or "blockwise"
  std::string cp_comm_type = "p2p";
  bool no_overlap_grad_reduce = false;
  bool overlap_ep_comm = false;
};

// Registers the flags on `command`, storing into `flags` (which must outlive parsing).
void add_plan_flags(CLI::App& command, PlanFlags& flags);

// --fp8 RECIPE ("" for bf16); InputError naming --fp8 for an unknown recipe.
Precision precision_from_fp8_flag(const std::string& recipe);

// Builds and validates the plan; InputError naming the flag or field for anything wrong.
Plan plan_from_flags(const PlanFlags& flags);

} // namespace foldplan::cli
