#include "runtime/preflight.hpp"

#include <gtest/gtest.h>

#include "core/errors.hpp"

namespace foldplan::runtime {
namespace {

std::string refusal(const std::function<void()>& check) {
  try {
    check();
  } catch (const InputError& error) {
    return std::string(error.what());
  }
  return "accepted";
}

TEST(Preflight, LocalGpusRunOneThreadPerRank) {
  const LocalLaunch launch = resolve_local_launch(4, 4, std::nullopt);
  EXPECT_EQ(launch.world_size, 4);
  EXPECT_EQ(launch.local_ranks, 4);
  EXPECT_EQ(launch.first_rank, 0);
  EXPECT_EQ(resolve_local_launch(1, 0, std::nullopt).local_ranks, 1); // default: one GPU
}

TEST(Preflight, ALauncherRunsOneRankPerProcessOnItsLocalGpu) {
  const LaunchRank mpi{.rank = 5, .world_size = 8, .local_rank = 1, .launcher = "Open MPI"};
  const LocalLaunch launch = resolve_local_launch(8, 0, mpi);
  EXPECT_EQ(launch.first_rank, 5);
  EXPECT_EQ(launch.local_ranks, 1);
  EXPECT_EQ(launch.first_device, 1);
  EXPECT_EQ(refusal([&] { resolve_local_launch(8, 2, mpi); }),
            "--local-gpus: 2 with Open MPI (one process per GPU): leave it out");
}

TEST(Preflight, AWorldSizeOtherThanTheRanksLaunchedIsRefusedWithBothNumbers) {
  EXPECT_EQ(refusal([] { resolve_local_launch(8, 2, std::nullopt); }),
            "world size: the plan needs 8 ranks but --local-gpus 2 runs 2 ranks");
  const LaunchRank mpi{.rank = 0, .world_size = 4, .local_rank = 0, .launcher = "Slurm"};
  EXPECT_EQ(refusal([&] { resolve_local_launch(2, 0, mpi); }),
            "world size: the plan needs 2 ranks but Slurm launched 4 processes");
}

TEST(Preflight, APlanLargerThanTheFreeMemoryIsRefusedWithBothNumbers) {
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  EXPECT_EQ(refusal([&] { check_memory_fits(70 * kGiB, 78.5 * kGiB, 79.1 * kGiB, 0, "H100"); }),
            "accepted");
  EXPECT_EQ(refusal([&] { check_memory_fits(221.25 * kGiB, 78.5 * kGiB, 79.1 * kGiB, 0, "H100"); }),
            "memory: the plan needs 221.2 GiB per GPU (predicted peak) but GPU 0 (H100) has 78.5 "
            "GiB free of 79.1 GiB; use --layers to run fewer layers");
}

} // namespace
} // namespace foldplan::runtime
