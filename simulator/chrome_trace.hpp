// Chrome trace export of a simulated step: one process per rank, one thread per stream, one
// complete ("X") event per op, in the Trace Event Format that Perfetto and chrome://tracing open.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/step_program.hpp"
#include "simulator/event_simulation.hpp"

namespace foldplan {

// `result` must carry a timeline (SimulationOptions::record_timeline). Only `ranks` are written:
// a whole cluster is millions of events, so callers pick, e.g., the first rank of every stage.
nlohmann::json chrome_trace(const StepProgram& program, const SimulationResult& result,
                            const std::vector<std::int64_t>& ranks);

// The format's metadata event ("ph": "M") `what` ("process_name", "thread_name",
// "process_sort_index"…) for process `pid`, thread `tid`, with `args`.
nlohmann::json chrome_trace_metadata(const char* what, std::int64_t pid, std::int64_t tid,
                                     nlohmann::json args);

inline constexpr double kChromeTraceMicrosecondsPerSecond = 1e6; // the format's time unit

// The first rank of every program (one per pipeline stage for a lowered plan; under skewed
// routing one per stage and place in the ETP×EP group).
std::vector<std::int64_t> first_rank_of_each_program(const StepProgram& program);

} // namespace foldplan
