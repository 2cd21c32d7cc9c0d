// The rendezvous with ranks as threads on one host: every rank gets rank 0's bytes; a missing
// rank or a missing listener ends within the timeout with a message instead of hanging.
#include "runtime/rendezvous.hpp"

#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

namespace foldplan::runtime {
namespace {

// Ports differ per test so a socket in TIME_WAIT from one test never meets the next.
RendezvousAddress local_address(int offset) {
  return {.host = "127.0.0.1", .port = 29800 + offset + static_cast<int>(::getpid() % 97) * 3};
}

TEST(Rendezvous, EveryRankReceivesRankZerosPayload) {
  const RendezvousAddress address = local_address(0);
  constexpr int kWorld = 4;
  const std::string payload("nccl-unique-id\0with a zero byte", 31);
  std::vector<std::future<std::string>> ranks;
  // Other ranks start first: they retry until rank 0 listens.
  for (int rank = kWorld - 1; rank >= 0; --rank) {
    ranks.push_back(std::async(std::launch::async, [&, rank] {
      return rendezvous_broadcast(address, rank, kWorld, rank == 0 ? payload : "", 10.0);
    }));
  }
  for (auto& rank : ranks)
    EXPECT_EQ(rank.get(), payload);
}

TEST(Rendezvous, AMissingRankTimesOutWithAMessage) {
  const RendezvousAddress address = local_address(1);
  auto peer =
      std::async(std::launch::async, [&] { return rendezvous_broadcast(address, 1, 3, "", 5.0); });
  const auto start = std::chrono::steady_clock::now();
  try {
    rendezvous_broadcast(address, 0, 3, "id", 0.5);
    FAIL() << "rank 0 returned although rank 2 never connected";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("1 of 2 ranks connected"), std::string::npos)
        << error.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(peer.get(), "id"); // the rank that connected still got the payload
}

TEST(Rendezvous, NoListenerTimesOut) {
  try {
    rendezvous_broadcast(local_address(2), 1, 2, "", 0.3);
    FAIL() << "returned without rank 0";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("rank 0 never listened"), std::string::npos)
        << error.what();
  }
}

} // namespace
} // namespace foldplan::runtime
