// Folding interchangeable ranks: on a balanced plan the 1,024 ranks of a search candidate run a
// handful of distinct programs, and every rank running the same program lives through the same
// step at the same times. Simulating one representative per program gives the same result for a
// fraction of the events — what lets the planner re-rank its best plans by full simulation.
//
// Ranks sharing a RankProgram form a class. The classes can stand in for their ranks when
// - the groups of a family that hold ranks of one class all hold the same classes at the same
//   positions (so a collective of any of them waits for the same classes, and a transfer to
//   position p reaches the same class), and
// - in a family that carries sends or receives, no class holds two positions of a group (two
//   pipeline stages sharing one program would still be apart in time),
// and the op timer gives every rank of a class the same durations (the caller's promise; for the
// cost model see CostModelOpTimer::ranks_interchangeable). Then, by induction over events, each
// rank of a class starts and ends every op when its representative does.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/step_program.hpp"

namespace foldplan {

struct FoldedProgram {
  // One rank per class: rank k runs class k's program, whose ops stay in the original (program k
  // here has none: copying a 1,024-GPU step's ops would cost as much as simulating them); a family
  // has one group per make-up of its groups: their classes by position (a class repeated in a
  // collective-only group appears once).
  StepProgram program;
  std::vector<std::int64_t> representative; // class → the lowest original rank of the class
  std::vector<std::int32_t> class_of_rank;  // original rank → class
};

// The folded program, or nullopt when the structure above does not hold. `program` must be valid
// (validate_step_program).
std::optional<FoldedProgram> fold_interchangeable_ranks(const StepProgram& program);

} // namespace foldplan
