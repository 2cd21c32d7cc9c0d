#include "cli/run_prediction.hpp"

#include "costmodel/cost_context.hpp"
#include "simulator/op_timer.hpp"

namespace foldplan::cli {

RunPrediction predict_run(const Plan& plan, const StepProgram& program,
                          const RunPredictionOptions& options) {
  // The runtime's own kernels: our attention, and its cuBLAS call for accumulating GEMMs.
  const CostContext context(plan.cluster, plan.gpus, options.calibration, kRunAttentionBackend,
                            GemmKernels::foldplan_runtime);
  const CostModelOpTimer timer(context, program);
  RunPrediction prediction;
  for (const RankProgram& rank_program : program.programs) {
    std::map<int, double>& own = prediction.op_time_s.emplace_back();
    for (const Op& op : rank_program.ops)
      own.emplace(op.id, timer(op, rank_program.ranks.front()));
  }
  prediction.simulation =
      simulate_step(program, [&](const Op& op, std::int64_t rank) { return timer(op, rank); },
                    {.record_timeline = options.record_timeline});
  prediction.step_time_s = prediction.simulation.step_time_s;
  prediction.attention_note = context.attention_fallback();
  prediction.calibration = options.calibration    ? options.calibration->gpu + " (given)"
                           : context.calibrated() ? "built-in " + plan.cluster.gpu.name
                                                  : "none (physical model)";
  return prediction;
}

} // namespace foldplan::cli
