// How search scales to huge worlds (issue #9): one analytic search, each in its own child process
// so its peak resident memory is its own (wait4's ru_maxrss), for Mixtral 8x22B and for the same
// model stretched to 10,000 layers, at 1,024, 10,000 and 100,000 H100s. Prints a table of wall
// time, points examined and timed, and peak RSS; docs/reliability.md records the numbers and the
// limits chosen from them.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "planner/search.hpp"

namespace {

using namespace foldplan;

struct Case {
  std::int64_t layers;
  std::int64_t gpus;
  std::int64_t global_batch_size;
};

struct Measured {
  double wall_s = 0;
  std::int64_t evaluated = 0;
  std::int64_t timed = 0;
  std::int64_t plans = 0;
};

Measured run_search(const Case& c) {
  SearchRequest request;
  request.model = load_model("mixtral-8x22b");
  request.model.name = fmt::format("mixtral-8x22b-{}-layers", c.layers);
  request.model.num_layers = c.layers;
  request.cluster = load_cluster("dgx-h100");
  request.gpus = c.gpus;
  request.training = {.seq_length = 4096, .global_batch_size = c.global_batch_size};
  request.space =
      default_search_space(request.model, request.cluster, request.gpus, request.training);
  request.simulate_top = 0; // the analytic search; the event simulation has its own limit
  const auto start = std::chrono::steady_clock::now();
  const SearchResult result = search(request);
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - start;
  return {wall.count(), result.evaluated, result.timed,
          static_cast<std::int64_t>(result.plans.size())};
}

} // namespace

int main() {
  // A global batch of about 4 sequences per GPU, a multiple of the data-parallel sizes.
  const std::vector<Case> cases = {{56, 1024, 4096},      {56, 10000, 40000},
                                   {56, 100000, 400000},  {10000, 1024, 4096},
                                   {10000, 10000, 40000}, {10000, 100000, 400000}};
  fmt::print("{:>7} {:>7} {:>8} {:>10} {:>10} {:>8} {:>6} {:>12}\n", "layers", "gpus", "gbs",
             "points", "timed", "plans", "wall", "peak RSS");
  for (const Case& c : cases) {
    int channel[2];
    if (pipe(channel) != 0)
      return 1;
    const pid_t child = fork();
    if (child == 0) {
      close(channel[0]);
      Measured measured;
      try {
        measured = run_search(c);
      } catch (const std::exception& error) {
        fmt::print("{:>7} {:>7} {:>8} refused: {}\n", c.layers, c.gpus, c.global_batch_size,
                   error.what());
        _exit(2);
      }
      if (write(channel[1], &measured, sizeof measured) != sizeof measured)
        _exit(1);
      _exit(0);
    }
    close(channel[1]);
    Measured measured;
    const bool received = read(channel[0], &measured, sizeof measured) == sizeof measured;
    close(channel[0]);
    int status = 0;
    rusage usage{};
    wait4(child, &status, 0, &usage);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
      continue; // the child said why
    if (!received || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fmt::print("{:>7} {:>7} {:>8} failed\n", c.layers, c.gpus, c.global_batch_size);
      continue;
    }
    fmt::print("{:>7} {:>7} {:>8} {:>10} {:>10} {:>8} {:>5.2f}s {:>9.0f} MB\n", c.layers, c.gpus,
               c.global_batch_size, measured.evaluated, measured.timed, measured.plans,
               measured.wall_s, static_cast<double>(usage.ru_maxrss) / 1024.0);
  }
  return 0;
}
