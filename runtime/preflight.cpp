#include "runtime/preflight.hpp"

#include <fmt/format.h>

#include "core/errors.hpp"

namespace foldplan::runtime {

LocalLaunch resolve_local_launch(std::int64_t program_world_size, int local_gpus,
                                 const std::optional<LaunchRank>& launcher) {
  if (local_gpus < 0)
    throw InputError("--local-gpus", fmt::format("{} is not a positive integer", local_gpus));
  LocalLaunch launch;
  if (launcher) {
    if (local_gpus > 1) {
      throw InputError("--local-gpus", fmt::format("{} with {} (one process per GPU): leave it out",
                                                   local_gpus, launcher->launcher));
    }
    launch = {.world_size = launcher->world_size,
              .first_rank = launcher->rank,
              .local_ranks = 1,
              .first_device = launcher->local_rank,
              .launcher = launcher};
  } else {
    const int threads = local_gpus == 0 ? 1 : local_gpus;
    launch = {.world_size = threads, .first_rank = 0, .local_ranks = threads};
  }
  if (launch.world_size != program_world_size) {
    const std::string launched =
        launcher
            ? fmt::format("{} launched {} processes", launcher->launcher, launch.world_size)
            : fmt::format("--local-gpus {} runs {} ranks", launch.world_size, launch.world_size);
    throw InputError("world size",
                     fmt::format("the plan needs {} ranks but {}", program_world_size, launched));
  }
  return launch;
}

void check_memory_fits(double predicted_bytes, double free_bytes, double total_bytes, int device,
                       const std::string& device_name) {
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  if (predicted_bytes <= free_bytes)
    return;
  throw InputError(
      "memory",
      fmt::format("the plan needs {:.1f} GiB per GPU (predicted peak) but GPU {} ({}) has "
                  "{:.1f} GiB free of {:.1f} GiB; use --layers to run fewer layers",
                  predicted_bytes / kGiB, device, device_name, free_bytes / kGiB,
                  total_bytes / kGiB));
}

} // namespace foldplan::runtime
