// What `foldplan run` measured, as the file it writes ("schema": "foldplan.measured/1"), laid out
// like what `foldplan simulate` predicts so the two line up op by op: one entry per RankProgram
// (the ranks that share it, and op id → measured seconds and start offset on one of them), every
// rank's step time,
// the step time (the slowest rank's), and the MoE layer checks. Plus the per-class view the table
// prints (GEMM, attention, memory-bound, each collective kind, send/recv).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/step_program.hpp"

namespace foldplan::runtime {

inline constexpr std::string_view kMeasuredSchema = "foldplan.measured/1";

// Raw measurements of every rank, as the executor returns them: per rank, per op position in its
// program, the median over the timed steps.
struct RankMeasurement {
  std::int64_t rank = 0;
  double step_time_s = 0;             // median over timed steps: first op start to last op end
  std::vector<double> op_time_s = {}; // by op position in the rank's program
  // By op position: when the op started, seconds after the step's start on this rank (the event
  // every stream waits on first); empty when not recorded.
  std::vector<double> op_start_s = {};
  bool operator==(const RankMeasurement&) const = default;
};

struct MoeCheckOutcome {
  std::string layer =
      {}; // the layer shape checked: "tokens 4096 hidden 4096 ffn 14336 experts 8 top-2"
  std::int64_t rank = 0;
  std::string name = {};
  bool passed = false;
  std::string detail = {};
  bool operator==(const MoeCheckOutcome&) const = default;
};

struct MeasuredProgram {
  std::vector<std::int64_t> ranks = {}; // the ranks that run this program
  std::int64_t measured_rank = 0;       // whose op times are given: the program's slowest rank
  std::map<int, double> op_time_s = {}; // op id → seconds per step (median over timed steps)
  // Op id → when the op started, seconds after the measured rank's step start (median over timed
  // steps); empty in files written before it was recorded.
  std::map<int, double> op_start_s = {};
  bool operator==(const MeasuredProgram&) const = default;
};

struct MeasuredStep {
  std::string schema = std::string(kMeasuredSchema);
  std::string device = {}; // "NVIDIA H100 80GB HBM3"
  std::int64_t world_size = 0;
  int warmup_steps = 0;
  int timed_steps = 0;
  double step_time_s = 0; // the slowest rank's median step time
  std::int64_t slowest_rank = 0;
  std::vector<double> rank_step_time_s = {};  // by rank
  std::vector<MeasuredProgram> programs = {}; // in the step program's order
  std::vector<MoeCheckOutcome> moe_checks = {};
  nlohmann::json metadata = nlohmann::json::object(); // the plan and prediction it ran against
  bool operator==(const MeasuredStep&) const = default;
};

// Builds the file's view from every rank's measurements (one per rank of the program's world).
MeasuredStep summarize_measurements(const StepProgram& program,
                                    const std::vector<RankMeasurement>& ranks,
                                    const std::string& device, int warmup_steps, int timed_steps);

nlohmann::json measured_step_to_json(const MeasuredStep& measured);
// Strict: a newer schema, unknown keys and wrong types are InputErrors naming the field.
MeasuredStep measured_step_from_json(const nlohmann::json& json);

// "GEMM", "attention", "memory-bound", "all-reduce", "all-gather", "reduce-scatter",
// "all-to-all", "all-to-all-v", "send/recv".
std::string_view op_class(const Op& op);

struct ClassTime {
  std::string op_class = {};
  double time_s = 0;
  int ops = 0;
};

// Seconds per class over the ops of `program` with times (op id → seconds), classes in the order
// above, empty classes left out.
std::vector<ClassTime> time_by_op_class(const RankProgram& program,
                                        const std::map<int, double>& op_time_s);

} // namespace foldplan::runtime
