// The pipeline timeline of one simulated step: a lane per rank (one DP replica's pipeline
// stages), its compute stream above one thin row per communication stream it uses, ops coloured
// by class. Ops closer than a pixel merge into one rectangle, so the SVG stays small (a few
// thousand rectangles) whatever the number of ops.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/step_program.hpp"
#include "simulator/event_simulation.hpp"

namespace foldplan::report {

struct TimelineLane {
  std::string label; // "stage 0 (rank 0)"
  std::int64_t rank = 0;
};

// `simulated` must have been recorded with record_timeline.
std::string render_timeline_chart(const StepProgram& program, const SimulationResult& simulated,
                                  const std::vector<TimelineLane>& lanes);

// A drawn rectangle: ops of one class merged while less than a pixel apart.
struct TimelineBox {
  double start_px = 0, end_px = 0;
  std::string colour;
  std::string first_op;
  std::int64_t ops = 0;
  double start_s = 0, end_s = 0;
};

// The boxes of ops `indices` of `ops` (one stream of one rank, in start order) at `px_per_s`.
std::vector<TimelineBox> merge_into_boxes(const std::vector<Op>& ops,
                                          const std::vector<OpInterval>& timeline,
                                          const std::vector<std::size_t>& indices, double px_per_s);

} // namespace foldplan::report
