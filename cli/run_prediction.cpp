#include "cli/run_prediction.hpp"

#include "costmodel/cost_context.hpp"
#include "simulator/event_simulation.hpp"
#include "simulator/op_timer.hpp"

namespace foldplan::cli {

RunPrediction predict_run(const Plan& plan, const StepProgram& program) {
  // The runtime's own kernels: our attention, and its cuBLAS call for accumulating GEMMs.
  const CostContext context(plan.cluster, plan.gpus, std::nullopt, kRunAttentionBackend,
                            GemmKernels::foldplan_runtime);
  const CostModelOpTimer timer(context, program);
  RunPrediction prediction;
  for (const RankProgram& rank_program : program.programs) {
    std::map<int, double>& own = prediction.op_time_s.emplace_back();
    for (const Op& op : rank_program.ops)
      own.emplace(op.id, timer(op, rank_program.ranks.front()));
  }
  prediction.step_time_s = simulate_step(program, [&](const Op& op, std::int64_t rank) {
                             return timer(op, rank);
                           }).step_time_s;
  prediction.attention_note = context.attention_fallback();
  return prediction;
}

} // namespace foldplan::cli
