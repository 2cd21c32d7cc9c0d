// A small step, its measurements and its prediction, for the tests of `foldplan validate`'s
// comparison and trace. Three ranks: ranks 0 and 1 share a program (a GEMM, then a TP all-reduce
// on tp_comm), rank 2 has its own (attention, then a memory-bound op).
//   Predicted (the event simulation with the times below): ranks 0 and 1 run fc1 0–3 ms and the
//   all-reduce 3–5 ms; rank 2 attention 0–4 ms and the norm 4–5.5 ms; the step 5.5 ms.
//   Measured: rank 1 is the slowest (9.5 ms), so it is program 0's measured rank; rank 2 8 ms.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cli/run_prediction.hpp"
#include "core/step_program.hpp"
#include "runtime/measured_step.hpp"
#include "simulator/event_simulation.hpp"

namespace foldplan::testing_cli {

inline StepProgram validation_program() {
  StepProgram program;
  program.world_size = 3;
  program.groups = {{.id = 0, .name = "tp", .members = {{0, 1}, {2}}}};
  RankProgram shared{.ranks = {0, 1}, .ops = {}};
  const int fc1 =
      append_op(shared, {.name = "layer0.fc1.fwd", .shape = GemmShape{.m = 8, .n = 8, .k = 8}});
  append_op(
      shared,
      {.name = "layer0.tp_ar.fwd",
       .kind = OpKind::collective,
       .stream = Stream::tp_comm,
       .deps = {fc1},
       .shape = CollectiveShape{
           .op = CollectiveOp::all_reduce, .group_id = 0, .bytes = 64, .send_bytes_per_peer = {}}});
  RankProgram own{.ranks = {2}, .ops = {}};
  const int attention = append_op(own, {.name = "layer1.attn.fwd",
                                        .kind = OpKind::attention,
                                        .shape = AttentionOpShape{.batch = 2,
                                                                  .heads = 4,
                                                                  .kv_heads = 2,
                                                                  .seq_q = 16,
                                                                  .seq_kv = 16,
                                                                  .qk_head_dim = 32,
                                                                  .v_head_dim = 32}});
  append_op(own, {.name = "layer1.norm.fwd",
                  .kind = OpKind::memory_bound,
                  .deps = {attention},
                  .shape = MemoryBoundShape{.bytes = 1024}});
  program.programs = {shared, own};
  validate_step_program(program);
  return program;
}

inline const std::map<std::string, double>& predicted_op_seconds() {
  static const std::map<std::string, double> seconds = {{"layer0.fc1.fwd", 0.003},
                                                        {"layer0.tp_ar.fwd", 0.002},
                                                        {"layer1.attn.fwd", 0.004},
                                                        {"layer1.norm.fwd", 0.0015}};
  return seconds;
}

inline cli::RunPrediction validation_prediction(const StepProgram& program) {
  const OpTimer timer = [](const Op& op, std::int64_t) {
    return predicted_op_seconds().at(op.name);
  };
  cli::RunPrediction prediction;
  for (const RankProgram& rank_program : program.programs) {
    std::map<int, double>& own = prediction.op_time_s.emplace_back();
    for (const Op& op : rank_program.ops)
      own.emplace(op.id, timer(op, rank_program.ranks.front()));
  }
  prediction.simulation = simulate_step(program, timer, {.record_timeline = true});
  prediction.step_time_s = prediction.simulation.step_time_s;
  prediction.calibration = "built-in H100-SXM5-80GB";
  return prediction;
}

inline runtime::MeasuredStep validation_measured(const StepProgram& program) {
  const std::vector<runtime::RankMeasurement> ranks = {
      {.rank = 0, .step_time_s = 0.009, .op_time_s = {0.0035, 0.0025}, .op_start_s = {0, 0.004}},
      {.rank = 1,
       .step_time_s = 0.0095,
       .op_time_s = {0.0036, 0.0028},
       .op_start_s = {0.0002, 0.0045}},
      {.rank = 2, .step_time_s = 0.008, .op_time_s = {0.005, 0.002}, .op_start_s = {0, 0.0055}}};
  return runtime::summarize_measurements(program, ranks, "NVIDIA H100 80GB HBM3", 1, 3);
}

} // namespace foldplan::testing_cli
