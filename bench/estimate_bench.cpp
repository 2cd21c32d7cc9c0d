// How fast one configuration is evaluated: the planner calls estimate_step for every point of a
// search, so it must take microseconds. Prints evaluations per second (items_per_second).
#include <benchmark/benchmark.h>

#include "costmodel/cost_context.hpp"
#include "costmodel/step_estimate.hpp"

namespace foldplan {
namespace {

Plan paper_plan(const std::string& model, std::int64_t gpus, ParallelSizes sizes,
                std::int64_t global_batch_size = 256) {
  Plan plan;
  plan.model = load_model(model);
  plan.cluster = load_cluster("dgx-h100");
  plan.gpus = gpus;
  plan.training = {
      .seq_length = 4096, .global_batch_size = global_batch_size, .micro_batch_size = 1};
  plan.parallel = make_parallel_config(gpus, sizes, true);
  plan.options.capacity_factor = 1.0;
  validate_plan(plan);
  return plan;
}

void run_estimates(benchmark::State& state, const Plan& plan) {
  const CostContext context(plan.cluster, plan.gpus);
  for (auto _ : state) {
    benchmark::DoNotOptimize(estimate_step(context, plan));
  }
  state.SetItemsProcessed(state.iterations());
}

// The paper's folded Mixtral-8x22B plan on 128 H100s: TP2 PP8 | ETP1 EP8.
void BM_EstimateMixtral8x22bOn128(benchmark::State& state) {
  run_estimates(state, paper_plan("mixtral-8x22b", 128, {.tp = 2, .pp = 8, .ep = 8, .etp = 1}));
}
BENCHMARK(BM_EstimateMixtral8x22bOn128);

// A larger cluster and an interleaved schedule: Mixtral-8x22B on 1,024 H100s, GBS 1024, PP8 VPP7.
void BM_EstimateMixtral8x22bOn1024Interleaved(benchmark::State& state) {
  run_estimates(state, paper_plan("mixtral-8x22b", 1024,
                                  {.tp = 2, .pp = 8, .vpp = 7, .ep = 8, .etp = 1}, 1024));
}
BENCHMARK(BM_EstimateMixtral8x22bOn1024Interleaved);

// A fine-grained model with many experts: Qwen3-235B-A22B (128 experts, top-8) on 1,024 H100s.
void BM_EstimateQwen3On1024(benchmark::State& state) {
  run_estimates(state,
                paper_plan("qwen3-235b-a22b", 1024, {.tp = 2, .pp = 2, .ep = 64, .etp = 1}, 1024));
}
BENCHMARK(BM_EstimateQwen3On1024);

} // namespace
} // namespace foldplan

BENCHMARK_MAIN();
