#include "cli/validation_trace.hpp"

#include <set>
#include <stdexcept>
#include <string>

#include "simulator/chrome_trace.hpp"

namespace foldplan::cli {
namespace {

constexpr double kMicroseconds = kChromeTraceMicrosecondsPerSecond;
constexpr double kMilliseconds = 1e3;

// The names of process `pid` and of the threads of the streams `program` uses, sorted by pid.
void add_process(nlohmann::json& events, std::int64_t pid, const std::string& name,
                 const RankProgram& program) {
  events.push_back(chrome_trace_metadata("process_name", pid, 0, {{"name", name}}));
  events.push_back(chrome_trace_metadata("process_sort_index", pid, 0, {{"sort_index", pid}}));
  std::set<Stream> streams;
  for (const Op& op : program.ops)
    streams.insert(op.stream);
  for (const Stream stream : streams) {
    const auto tid = static_cast<std::int64_t>(stream_index(stream));
    events.push_back(chrome_trace_metadata("thread_name", pid, tid,
                                           {{"name", std::string(stream_name(stream))}}));
    events.push_back(chrome_trace_metadata("thread_sort_index", pid, tid, {{"sort_index", tid}}));
  }
}

nlohmann::json op_event(const Op& op, std::int64_t pid, double start_s, double duration_s,
                        const nlohmann::json& args) {
  return {{"name", op.name},
          {"cat", std::string(phase_name(op.phase))},
          {"ph", "X"},
          {"pid", pid},
          {"tid", stream_index(op.stream)},
          {"ts", start_s * kMicroseconds},
          {"dur", duration_s * kMicroseconds},
          {"args", args}};
}

} // namespace

nlohmann::json validation_trace(const StepProgram& program, const runtime::MeasuredStep& measured,
                                const RunPrediction& prediction) {
  if (measured.programs.size() != program.programs.size())
    throw std::invalid_argument("validation_trace: the measurements are of another program");
  nlohmann::json events = nlohmann::json::array();
  for (std::size_t index = 0; index < program.programs.size(); ++index) {
    const RankProgram& rank_program = program.programs[index];
    const runtime::MeasuredProgram& measured_program = measured.programs[index];
    const std::int64_t rank = measured_program.measured_rank;
    const std::vector<OpInterval>& timeline =
        prediction.simulation.ranks.at(static_cast<std::size_t>(rank)).timeline;
    if (timeline.size() != rank_program.ops.size())
      throw std::invalid_argument("validation_trace needs the prediction's timeline");
    if (measured_program.op_start_s.size() != rank_program.ops.size())
      throw std::invalid_argument("validation_trace needs the measured start offsets");
    const std::int64_t predicted_pid = 2 * rank;
    const std::int64_t measured_pid = predicted_pid + 1;
    add_process(events, predicted_pid, "rank " + std::to_string(rank) + " predicted", rank_program);
    add_process(events, measured_pid, "rank " + std::to_string(rank) + " measured", rank_program);
    for (std::size_t position = 0; position < rank_program.ops.size(); ++position) {
      const Op& op = rank_program.ops[position];
      const OpInterval& predicted = timeline[position];
      const double predicted_s = predicted.end_s - predicted.start_s;
      const double measured_s = measured_program.op_time_s.at(op.id);
      const nlohmann::json args = {
          {"op", op.id},
          {"kind", std::string(op_kind_name(op.kind))},
          {"class", std::string(runtime::op_class(op))},
          {"predicted_ms", predicted_s * kMilliseconds},
          {"measured_ms", measured_s * kMilliseconds},
          {"error", measured_s > 0 ? nlohmann::json(predicted_s / measured_s - 1) : nullptr}};
      events.push_back(op_event(op, predicted_pid, predicted.start_s, predicted_s, args));
      events.push_back(
          op_event(op, measured_pid, measured_program.op_start_s.at(op.id), measured_s, args));
    }
  }
  return {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
}

} // namespace foldplan::cli
