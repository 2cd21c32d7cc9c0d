#include "runtime/launch_environment.hpp"

#include <map>
#include <string>

#include <gtest/gtest.h>

#include "core/errors.hpp"

namespace foldplan::runtime {
namespace {

EnvironmentReader table(std::map<std::string, std::string> variables) {
  return [variables = std::move(variables)](const char* name) -> const char* {
    const auto found = variables.find(name);
    return found == variables.end() ? nullptr : found->second.c_str();
  };
}

TEST(LaunchEnvironment, NoLauncherVariablesMeansOneProcessDrivingLocalGpus) {
  EXPECT_FALSE(launch_rank_from_environment(table({})).has_value());
}

TEST(LaunchEnvironment, OpenMpiWinsOverTheSlurmAllocationItRunsIn) {
  const auto launch = launch_rank_from_environment(table({{"OMPI_COMM_WORLD_RANK", "3"},
                                                          {"OMPI_COMM_WORLD_SIZE", "8"},
                                                          {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                                          {"SLURM_PROCID", "0"},
                                                          {"SLURM_NTASKS", "2"}}));
  ASSERT_TRUE(launch.has_value());
  EXPECT_EQ(launch->rank, 3);
  EXPECT_EQ(launch->world_size, 8);
  EXPECT_EQ(launch->local_rank, 1);
  EXPECT_EQ(launch->launcher, "Open MPI");
}

TEST(LaunchEnvironment, PmiAndSlurmAreRead) {
  const auto pmi = launch_rank_from_environment(table({{"PMI_RANK", "1"}, {"PMI_SIZE", "2"}}));
  ASSERT_TRUE(pmi.has_value());
  EXPECT_EQ(pmi->launcher, "PMI");
  EXPECT_EQ(pmi->local_rank, 0);
  const auto slurm = launch_rank_from_environment(
      table({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "5"}}));
  ASSERT_TRUE(slurm.has_value());
  EXPECT_EQ(slurm->rank, 5);
  EXPECT_EQ(slurm->world_size, 16);
  EXPECT_EQ(slurm->local_rank, 5);
}

TEST(LaunchEnvironment, BadValuesNameTheVariable) {
  try {
    launch_rank_from_environment(table({{"PMI_RANK", "2"}, {"PMI_SIZE", "2"}}));
    FAIL() << "rank 2 of 2 accepted";
  } catch (const InputError& error) {
    EXPECT_EQ(error.field(), "PMI_RANK");
    EXPECT_EQ(error.rule(), "2 is not below PMI_SIZE 2");
  }
  EXPECT_THROW(launch_rank_from_environment(table({{"SLURM_PROCID", "x"}, {"SLURM_NTASKS", "2"}})),
               InputError);
}

TEST(LaunchEnvironment, RendezvousAddressDefaultsAsTorchrun) {
  const RendezvousAddress defaults = rendezvous_address_from_environment(table({}));
  EXPECT_EQ(defaults.host, "127.0.0.1");
  EXPECT_EQ(defaults.port, 29500);
  const RendezvousAddress given = rendezvous_address_from_environment(
      table({{"MASTER_ADDR", "node07"}, {"MASTER_PORT", "6000"}}));
  EXPECT_EQ(given.host, "node07");
  EXPECT_EQ(given.port, 6000);
  EXPECT_THROW(rendezvous_address_from_environment(table({{"MASTER_PORT", "70000"}})), InputError);
}

} // namespace
} // namespace foldplan::runtime
