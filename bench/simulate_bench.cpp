// How fast a whole step is lowered and simulated: every rank of a 1,024-GPU Mixtral-8x22B plan
// played op by op (issue: under 2 s on a 2-core machine), and with interchangeable ranks folded.
#include <benchmark/benchmark.h>

#include "costmodel/cost_context.hpp"
#include "simulator/event_simulation.hpp"
#include "simulator/lowering.hpp"
#include "simulator/op_timer.hpp"

namespace foldplan {
namespace {

Plan mixtral_on_1024() {
  Plan plan;
  plan.model = load_model("mixtral-8x22b");
  plan.cluster = load_cluster("dgx-h100");
  plan.gpus = 1024;
  plan.training = {.seq_length = 4096, .global_batch_size = 1024, .micro_batch_size = 1};
  plan.parallel = make_parallel_config(1024, {.tp = 2, .pp = 8, .ep = 8, .etp = 1}, true);
  plan.options.capacity_factor = 1.0;
  validate_plan(plan);
  return plan;
}

// state.range(0): 1 folds interchangeable ranks (one simulated rank per program, the planner's
// way), 0 plays all 1,024.
void BM_LowerAndSimulateMixtral8x22bOn1024(benchmark::State& state) {
  const Plan plan = mixtral_on_1024();
  const CostContext context(plan.cluster, plan.gpus);
  for (auto _ : state) {
    const StepProgram program = lower_plan(plan);
    const CostModelOpTimer timer(context, program);
    benchmark::DoNotOptimize(
        simulate_step(program, [&](const Op& op, std::int64_t rank) { return timer(op, rank); },
                      {.fold_interchangeable_ranks = state.range(0) == 1}));
  }
}
BENCHMARK(BM_LowerAndSimulateMixtral8x22bOn1024)
    ->ArgName("folded")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);

} // namespace
} // namespace foldplan

BENCHMARK_MAIN();
