// The cost model as the event simulation's clock: the time of one op of a step program on one
// rank — GEMMs, attention and memory-bound kernels from the compute model, collectives and
// transfers from the collective model on the rank's own (placed) group.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/step_program.hpp"
#include "costmodel/cost_context.hpp"
#include "topologies/group_placement.hpp"

namespace foldplan {

class CostModelOpTimer {
public:
  // Both must outlive the timer.
  CostModelOpTimer(const CostContext& context, const StepProgram& program);

  double operator()(const Op& op, std::int64_t rank) const;

  // Whether every rank of a RankProgram gets the same durations, so the event simulation may fold
  // them (SimulationOptions::fold_interchangeable_ranks): compute ops never depend on the rank, and
  // communication costs depend only on which members of a group share a node, an NVLink domain and
  // a leaf group — so this holds when every group of a family has its members laid out alike
  // (the same pattern of shared nodes, domains and leaf groups, position by position).
  bool ranks_interchangeable() const;

private:
  // Where `rank` sits in family `group_id`: its group's index and its position in that group.
  struct GroupSeat {
    std::size_t family = 0;
    std::int32_t group = -1;
    std::int32_t position = -1;
  };
  GroupSeat seat(int group_id, std::int64_t rank) const;
  // The placement of `rank`'s group in family `group_id`, placed once per group and cached.
  const GroupPlacement& placement(const GroupSeat& seat) const;

  const CostContext& context_;
  const StepProgram& program_;
  // By family (program_.groups order), then rank: the group holding it and its position, so a
  // look-up costs no search over the world.
  std::vector<std::vector<std::int32_t>> group_of_rank_;
  std::vector<std::vector<std::int32_t>> position_of_rank_;
  // By family, then group.
  mutable std::vector<std::vector<std::optional<GroupPlacement>>> placements_;
};

} // namespace foldplan
