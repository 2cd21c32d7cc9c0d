// The cost model as the event simulation's clock: the time of one op of a step program on one
// rank — GEMMs, attention and memory-bound kernels from the compute model, collectives and
// transfers from the collective model on the rank's own (placed) group.
#pragma once

#include <cstdint>
#include <map>
#include <utility>

#include "core/step_program.hpp"
#include "costmodel/cost_context.hpp"
#include "topologies/group_placement.hpp"

namespace foldplan {

class CostModelOpTimer {
public:
  // Both must outlive the timer.
  CostModelOpTimer(const CostContext& context, const StepProgram& program);

  double operator()(const Op& op, std::int64_t rank) const;

private:
  // The placement of `rank`'s group in family `group_id`, placed once per group and cached.
  const GroupPlacement& placement(int group_id, std::int64_t rank) const;

  const CostContext& context_;
  const StepProgram& program_;
  // (family id, first rank of the group) → placement.
  mutable std::map<std::pair<int, std::int64_t>, GroupPlacement> placements_;
};

} // namespace foldplan
