#include "simulator/routed_lowering.hpp"

#include <algorithm>

#include "simulator/expert_load.hpp"
#include "simulator/lowering.hpp"
#include "simulator/simulation_size.hpp"

namespace foldplan {

RoutedStep lower_routed_plan(const Plan& plan, const RoutingSpec& routing, std::uint64_t seed) {
  RoutedStep step;
  if (!plan.model.is_moe()) {
    check_simulation_size(plan, 0);
    step.program = lower_plan(plan);
    return step;
  }
  const bool balanced = routing.kind == RoutingKind::balanced;
  const int micro_batches =
      balanced ? kBalancedSampledMicroBatches
               : static_cast<int>(std::min<std::int64_t>(
                     kRoutedSampledMicroBatches, num_micro_batches(plan.parallel, plan.training)));
  check_simulation_size(plan, micro_batches);
  step.dispatch = simulate_dispatch(plan.model, plan.parallel, plan.training, plan.options, routing,
                                    micro_batches, seed);
  if (balanced) {
    step.program = lower_plan(plan);
    return step;
  }
  step.program = lower_plan(plan, ExpertLoads(*step.dispatch));
  step.routed_experts = step.program.metadata.value("routing", "") == "simulated";
  return step;
}

} // namespace foldplan
