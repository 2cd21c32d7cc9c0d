// The checks `foldplan run` makes before it touches a GPU, each refusal one line with the numbers
// (InputError, exit 2): how many ranks run (threads on local GPUs, or processes under a launcher)
// against the program's world size, and the plan's predicted peak memory against the GPU's free
// memory.
#pragma once

#include <optional>
#include <string>

#include "runtime/launch_environment.hpp"

namespace foldplan::runtime {

// The ranks this process runs: ranks first_rank … first_rank + local_ranks − 1 of world_size.
struct LocalLaunch {
  int world_size = 1;
  int first_rank = 0;
  int local_ranks = 1;
  int first_device = 0;                    // CUDA device of the first local rank
  std::optional<LaunchRank> launcher = {}; // set when a launcher started one process per GPU
};

// `local_gpus` is --local-gpus (0: not given). Under a launcher each process drives one GPU, so
// --local-gpus must be absent or 1. Refuses a program world size other than the ranks launched.
LocalLaunch resolve_local_launch(std::int64_t program_world_size, int local_gpus,
                                 const std::optional<LaunchRank>& launcher);

// Refuses when `predicted_bytes` (the plan's peak per GPU) exceeds `free_bytes` on the device.
void check_memory_fits(double predicted_bytes, double free_bytes, double total_bytes, int device,
                       const std::string& device_name);

} // namespace foldplan::runtime
