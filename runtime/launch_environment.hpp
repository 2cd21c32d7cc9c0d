// Where this process sits in a multi-process launch: its rank, the world size and its GPU on the
// node, read from the variables the launchers set (Open MPI, PMI as MPICH and Hydra set it, Slurm),
// and the rendezvous address (MASTER_ADDR, MASTER_PORT, as torchrun names them).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace foldplan::runtime {

struct LaunchRank {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;        // the GPU this process drives
  std::string launcher = {}; // "Open MPI", "PMI", "Slurm"
};

// Reads a variable; nullptr when unset (std::getenv, or a table in tests).
using EnvironmentReader = std::function<const char*(const char*)>;

// nullopt when no launcher variables are set (a single process driving local GPUs). InputError
// naming the variable when one is set but is not a valid rank, size or pair (rank >= size).
std::optional<LaunchRank> launch_rank_from_environment(const EnvironmentReader& read);

struct RendezvousAddress {
  std::string host = "127.0.0.1";
  int port = 29500;
};

// MASTER_ADDR (default 127.0.0.1) and MASTER_PORT (default 29500); InputError for a bad port.
RendezvousAddress rendezvous_address_from_environment(const EnvironmentReader& read);

} // namespace foldplan::runtime
