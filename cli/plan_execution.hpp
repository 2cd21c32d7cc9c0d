// What `foldplan run` and `foldplan validate` share: the plan file (cut to --layers layers),
// lowered to every rank's step program with the routing, priced by the cost model
// (cli/run_prediction.hpp), executed on the GPUs with its MoE layer checked against a CPU
// reference, and the measurements summarised with what they ran against.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/run_prediction.hpp"
#include "core/step_program.hpp"
#include "parallel/plan.hpp"
#include "runtime/measured_step.hpp"
#include "simulator/routing.hpp"

namespace foldplan::cli {

struct PlanExecutionOptions {
  std::string plan_path;
  std::optional<std::int64_t> layers; // the plan's own when not given
  int steps = 3;
  int warmup = 1;
  int local_gpus = 0;
  std::string routing = "balanced";
  double timeout_s = 300;
  std::string calibration;      // a `foldplan calibrate` file; empty: the shipped calibration
  bool record_timeline = false; // of the prediction (RunPredictionOptions::record_timeline)
};

// The flags both commands take: the plan, --layers, --steps, --warmup, --local-gpus, --routing
// and --timeout.
void add_plan_execution_flags(CLI::App& command, PlanExecutionOptions& options);

struct PlanExecution {
  Plan plan = {}; // cut to --layers
  RoutingSpec routing = {};
  StepProgram program = {};
  RunPrediction prediction = {};
  // False on ranks other than 0 under a launcher: rank 0 reports, the others only fail on their
  // checks; `measured` is then empty.
  bool reporting = true;
  bool checks_passed = true;
  // The step as `run -o` writes it: with its MoE checks, and metadata naming the plan, routing and
  // the prediction.
  runtime::MeasuredStep measured = {};
};

// InputError for bad options, plan, routing or calibration — all checked before the GPU runtime is
// required, whose refusal names `command` ("foldplan validate") — and runtime::ExecutionError when
// the run fails.
PlanExecution execute_plan(const PlanExecutionOptions& options, const std::string& command);

// An execution measured earlier (`foldplan run -o`, `foldplan validate --measured`) predicted
// again, with options.calibration, without a GPU: the plan lowered with the layers and routing the
// file names (--layers and --routing, when given, must agree with it). InputError naming
// `measured_flag` when the file's programs are not the plan's (another plan, --layers or
// --routing).
PlanExecution replay_plan(const PlanExecutionOptions& options, const std::string& measured_path,
                          const std::string& measured_flag);

// What `run` and `validate` do with an execution, as one exit code: execute_plan (its refusal named
// "foldplan VERB"); on the reporting process, `report`, which prints and writes what the command
// shows and returns the files it wrote; then, unless `json`, the MoE layer checks and "wrote FILE"
// for each file. 1 (said on stderr: "foldplan: VERB failed: …") when the run or a check failed.
using ExecutionReport = std::function<std::vector<std::string>(const PlanExecution&)>;
int execute_and_report(const PlanExecutionOptions& options, const std::string& verb, bool json,
                       const ExecutionReport& report);

} // namespace foldplan::cli
