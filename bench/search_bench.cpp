// How fast a whole search runs: issue #5 asks for Mixtral-8x22B on 1,024 H100s (seq 4096,
// GBS 1024, the default space) in under a second on this 2-core machine. Prints the time of one
// search, the points of the space examined per second (items_per_second) and the configurations
// timed per second ("timed/s"); the event-simulation re-ranking is measured on its own.
#include <benchmark/benchmark.h>

#include "planner/search.hpp"

namespace foldplan {
namespace {

SearchRequest mixtral_on_1024(std::int64_t simulate_top) {
  SearchRequest request;
  request.model = load_model("mixtral-8x22b");
  request.cluster = load_cluster("dgx-h100");
  request.gpus = 1024;
  request.training = {.seq_length = 4096, .global_batch_size = 1024};
  request.space =
      default_search_space(request.model, request.cluster, request.gpus, request.training);
  request.simulate_top = simulate_top;
  return request;
}

void run_searches(benchmark::State& state, const SearchRequest& request) {
  std::int64_t examined = 0, timed = 0;
  for (auto _ : state) {
    const SearchResult result = search(request);
    examined += result.evaluated;
    timed += result.timed;
    benchmark::DoNotOptimize(result.plans.data());
  }
  state.SetItemsProcessed(examined);
  state.counters["timed/s"] =
      benchmark::Counter(static_cast<double>(timed), benchmark::Counter::kIsRate);
}

// The analytic search over the whole default space, on every core.
void BM_SearchMixtral8x22bOn1024(benchmark::State& state) {
  run_searches(state, mixtral_on_1024(0));
}
BENCHMARK(BM_SearchMixtral8x22bOn1024)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same with the command's default re-ranking of the best three by event simulation.
void BM_SearchAndSimulateBestThreeMixtral8x22bOn1024(benchmark::State& state) {
  run_searches(state, mixtral_on_1024(3));
}
BENCHMARK(BM_SearchAndSimulateBestThreeMixtral8x22bOn1024)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

} // namespace
} // namespace foldplan

BENCHMARK_MAIN();
