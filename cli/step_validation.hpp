// `foldplan validate`'s comparison: the measured step beside the predicted one — the whole step
// (the slowest rank's time against the event simulation's), each rank program's step (its slowest
// rank's time against that rank's simulated finish) and, per op class (GEMM, attention,
// memory-bound, each collective kind, send/recv), the op times summed over the step — with the
// relative error predicted / measured − 1 (as `foldplan run` prints it: negative when the model is
// optimistic). Its JSON is the file `foldplan report --validation` reads
// (report/validation_file.hpp), plus what ran.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/run_prediction.hpp"
#include "core/step_program.hpp"
#include "runtime/measured_step.hpp"

namespace foldplan::cli {

struct ValidationRow {
  std::string name; // "step" or an op class
  int ops = 0;      // ops summed; 0 for a step
  double measured_s = 0;
  double predicted_s = 0;

  // predicted / measured − 1; 0 when nothing was measured.
  double relative_error() const { return measured_s > 0 ? predicted_s / measured_s - 1 : 0.0; }
};

struct ProgramValidation {
  std::vector<std::int64_t> ranks = {}; // that run the program
  std::int64_t measured_rank = 0;       // its slowest rank, whose op times are compared
  ValidationRow step = {};              // that rank's step against its simulated finish
  std::vector<ValidationRow> classes = {};
};

struct StepValidation {
  ValidationRow step = {}; // the slowest rank's step against the simulated step
  std::int64_t slowest_rank = 0;
  std::size_t slowest_program = 0; // the index of the program holding the slowest rank
  std::vector<ProgramValidation> programs = {};
  // The slowest rank's ops grouped by name without their layer ("layer3.moe.fc1.wgrad" →
  // "moe.fc1.wgrad"), summed over layers and micro-batches; the largest |predicted − measured|
  // first. Where a class error comes from.
  std::vector<ValidationRow> ops_by_name = {};
};

// "layer12.moe.fc1.wgrad" → "moe.fc1.wgrad"; a name without a layer prefix is its own group.
std::string op_group_name(const std::string& op_name);

// `measured` and `prediction` are of `program` (execute_plan's, or the same shapes).
StepValidation compare_step(const StepProgram& program, const runtime::MeasuredStep& measured,
                            const RunPrediction& prediction);

// The terminal view: the slowest rank's step and op classes (measured ms, predicted ms, error), the
// `top_ops` op groups that differ most, then, with several programs (pipeline stages, EP ranks
// under skewed routing), every program's step.
std::string validation_table(const StepValidation& validation, std::size_t top_ops = 8);

// What ran, for the file's metadata.
struct ValidationSubject {
  std::string plan_path;
  std::string model;
  std::int64_t layers = 0;
  std::string routing;
  std::string calibration; // the file given, or RunPrediction::calibration
  std::optional<std::string> attention_note = std::nullopt;
};

// {"schema": "foldplan.validation/1", what ran, "step": {...}, one entry per op class of the
// slowest rank's program, "programs": [{"ranks", "measured_rank", "step", "classes"}],
// "ops_by_name": [{"name", "ops", …}]}; every entry {"measured_s", "predicted_s",
// "relative_error"} (classes and op groups with "ops").
nlohmann::json validation_to_json(const StepValidation& validation,
                                  const runtime::MeasuredStep& measured,
                                  const ValidationSubject& subject);

} // namespace foldplan::cli
