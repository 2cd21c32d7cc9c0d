#include "simulator/simulation_size.hpp"

#include <cmath>

#include <fmt/format.h>

#include "core/errors.hpp"

namespace foldplan {

SimulationSize simulation_size(const Plan& plan, int sampled_micro_batches) {
  const ParallelConfig& parallel = plan.parallel;
  const TrainingShape& training = plan.training;
  SimulationSize size;
  // Doubles: the products of huge inputs must not overflow before they are compared.
  const double layers = static_cast<double>(plan.model.num_layers + plan.model.mtp_num_layers);
  const double layers_per_stage = std::ceil(layers / static_cast<double>(parallel.pp));
  size.layer_passes = static_cast<double>(plan.gpus) * layers_per_stage *
                      static_cast<double>(num_micro_batches(parallel, training));
  if (plan.model.is_moe()) {
    const double group = static_cast<double>(parallel.etp * parallel.ep);
    const double tokens_per_rank = static_cast<double>(training.micro_batch_size) *
                                   static_cast<double>(training.seq_length) /
                                   static_cast<double>(parallel.tp * parallel.cp);
    const double choices =
        group * tokens_per_rank * static_cast<double>(plan.model.moe.router_topk);
    const double matrix = static_cast<double>(parallel.etp) * static_cast<double>(parallel.ep) *
                          static_cast<double>(parallel.ep);
    size.dispatch_cells = static_cast<double>(plan.model.num_moe_layers()) *
                          static_cast<double>(sampled_micro_batches) * (choices + matrix);
  }
  return size;
}

std::optional<std::string> simulation_size_violation(const Plan& plan, int sampled_micro_batches) {
  const SimulationSize size = simulation_size(plan, sampled_micro_batches);
  if (size.layer_passes > kMaxSimulatedLayerPasses) {
    const std::int64_t layers = plan.model.num_layers + plan.model.mtp_num_layers;
    return fmt::format(
        "{} GPUs × {} layers over pp {} × {} micro-batches = {:.3g} layer passes to simulate, "
        "over the limit of {:.3g}; the analytic `foldplan estimate` has no such limit",
        plan.gpus, layers, plan.parallel.pp, num_micro_batches(plan.parallel, plan.training),
        size.layer_passes, kMaxSimulatedLayerPasses);
  }
  if (size.dispatch_cells > kMaxDispatchCells) {
    return fmt::format(
        "{} MoE layers × {} sampled micro-batches of an ETP {} × EP {} group = {:.3g} "
        "routed tokens and all-to-all cells to simulate, over the limit of {:.3g}",
        plan.model.num_moe_layers(), sampled_micro_batches, plan.parallel.etp, plan.parallel.ep,
        size.dispatch_cells, kMaxDispatchCells);
  }
  return std::nullopt;
}

void check_simulation_size(const Plan& plan, int sampled_micro_batches) {
  if (auto violation = simulation_size_violation(plan, sampled_micro_batches))
    throw InputError("plan", *violation);
}

} // namespace foldplan
