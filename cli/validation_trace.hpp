// `foldplan validate --trace`: one Chrome trace (Perfetto, chrome://tracing) with the predicted
// and the measured timeline of every rank program side by side — for each program's measured rank
// R, process "rank R predicted" (pid 2R) beside "rank R measured" (pid 2R+1), one thread per
// stream, one complete event per op on each, both carrying the op's predicted and measured times
// and the relative error. Predicted: the event simulation's timeline; measured: the op's start
// after the rank's step start and its duration, medians over the timed steps.
#pragma once

#include <nlohmann/json.hpp>

#include "cli/run_prediction.hpp"
#include "core/step_program.hpp"
#include "runtime/measured_step.hpp"

namespace foldplan::cli {

// `prediction` must carry the timeline (RunPredictionOptions::record_timeline) and `measured` the
// start offsets (MeasuredProgram::op_start_s) of `program`; std::invalid_argument otherwise.
nlohmann::json validation_trace(const StepProgram& program, const runtime::MeasuredStep& measured,
                                const RunPrediction& prediction);

} // namespace foldplan::cli
