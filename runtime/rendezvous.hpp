// The rendezvous that hands NCCL's unique id from rank 0 to every other process, as torchrun's
// TCP store does: rank 0 listens at MASTER_ADDR:MASTER_PORT and sends the bytes to each of the
// other world_size − 1 ranks as they connect. Plain POSIX sockets, every wait bounded by a timeout,
// so a missing peer ends the run with a message instead of a hang.
#pragma once

#include <string>

#include "runtime/launch_environment.hpp"

namespace foldplan::runtime {

// Rank 0 passes the payload and gets it back; other ranks pass anything and get rank 0's. Throws
// std::runtime_error naming the address, the rank and what did not happen within timeout_s (bind
// failed, ranks that never connected, no listener, a short read).
std::string rendezvous_broadcast(const RendezvousAddress& address, int rank, int world_size,
                                 const std::string& payload, double timeout_s);

} // namespace foldplan::runtime
