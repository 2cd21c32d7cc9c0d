// Launcher variables, checked in the order the launchers would be nested: mpirun inside a Slurm
// allocation sets both, and its own variables describe the processes it started.
#include "runtime/launch_environment.hpp"

#include <array>
#include <charconv>
#include <string_view>

#include <fmt/format.h>

#include "core/errors.hpp"

namespace foldplan::runtime {
namespace {

struct LauncherVariables {
  const char* launcher;
  const char* rank;
  const char* size;
  const char* local_rank; // nullptr: the launcher has none; rank modulo the visible GPUs is not
                          // ours to guess, so 0 — one process per node
};

constexpr std::array kLaunchers = {
    LauncherVariables{"Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                      "OMPI_COMM_WORLD_LOCAL_RANK"},
    LauncherVariables{"PMI", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
    LauncherVariables{"Slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
};

int parse_count(const char* name, const char* text, int minimum) {
  const std::string_view view(text);
  int value = 0;
  const auto [end, error] = std::from_chars(view.data(), view.data() + view.size(), value);
  if (error != std::errc() || end != view.data() + view.size() || value < minimum) {
    throw InputError(name, fmt::format("'{}' is not an integer >= {}", view, minimum));
  }
  return value;
}

} // namespace

std::optional<LaunchRank> launch_rank_from_environment(const EnvironmentReader& read) {
  for (const LauncherVariables& variables : kLaunchers) {
    const char* rank = read(variables.rank);
    const char* size = read(variables.size);
    if (rank == nullptr || size == nullptr)
      continue;
    LaunchRank launch{.rank = parse_count(variables.rank, rank, 0),
                      .world_size = parse_count(variables.size, size, 1),
                      .local_rank = 0,
                      .launcher = variables.launcher};
    if (launch.rank >= launch.world_size) {
      throw InputError(variables.rank, fmt::format("{} is not below {} {}", launch.rank,
                                                   variables.size, launch.world_size));
    }
    if (const char* local = read(variables.local_rank); local != nullptr)
      launch.local_rank = parse_count(variables.local_rank, local, 0);
    return launch;
  }
  return std::nullopt;
}

RendezvousAddress rendezvous_address_from_environment(const EnvironmentReader& read) {
  RendezvousAddress address;
  if (const char* host = read("MASTER_ADDR"); host != nullptr && *host != '\0')
    address.host = host;
  if (const char* port = read("MASTER_PORT"); port != nullptr) {
    address.port = parse_count("MASTER_PORT", port, 1);
    if (address.port > 65535)
      throw InputError("MASTER_PORT", fmt::format("{} is not a TCP port (1-65535)", address.port));
  }
  return address;
}

} // namespace foldplan::runtime
