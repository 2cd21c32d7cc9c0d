#include "simulator/chrome_trace.hpp"

#include <stdexcept>
#include <string>

namespace foldplan {
namespace {

constexpr double kMicrosecondsPerSecond = kChromeTraceMicrosecondsPerSecond;

nlohmann::json metadata_event(const char* what, std::int64_t pid, std::int64_t tid,
                              const std::string& name) {
  return chrome_trace_metadata(what, pid, tid, {{"name", name}});
}

} // namespace

nlohmann::json chrome_trace_metadata(const char* what, std::int64_t pid, std::int64_t tid,
                                     nlohmann::json args) {
  return {{"ph", "M"}, {"name", what}, {"pid", pid}, {"tid", tid}, {"args", std::move(args)}};
}

std::vector<std::int64_t> first_rank_of_each_program(const StepProgram& program) {
  std::vector<std::int64_t> ranks;
  for (const RankProgram& rank_program : program.programs) {
    if (!rank_program.ranks.empty())
      ranks.push_back(rank_program.ranks.front());
  }
  return ranks;
}

nlohmann::json chrome_trace(const StepProgram& program, const SimulationResult& result,
                            const std::vector<std::int64_t>& ranks) {
  nlohmann::json events = nlohmann::json::array();
  for (const std::int64_t rank : ranks) {
    const RankProgram* rank_program = program_of_rank(program, rank);
    const RankSimulation& simulated = result.ranks.at(static_cast<std::size_t>(rank));
    if (rank_program == nullptr || simulated.timeline.size() != rank_program->ops.size()) {
      throw std::invalid_argument("chrome_trace needs a simulation with its timeline recorded");
    }
    events.push_back(metadata_event("process_name", rank, 0, "rank " + std::to_string(rank)));
    for (std::size_t stream = 0; stream < kStreamCount; ++stream) {
      events.push_back(metadata_event("thread_name", rank, static_cast<std::int64_t>(stream),
                                      std::string(stream_name(static_cast<Stream>(stream)))));
    }
    for (std::size_t i = 0; i < rank_program->ops.size(); ++i) {
      const Op& op = rank_program->ops[i];
      const OpInterval& interval = simulated.timeline[i];
      events.push_back({{"name", op.name},
                        {"cat", std::string(phase_name(op.phase))},
                        {"ph", "X"},
                        {"pid", rank},
                        {"tid", stream_index(op.stream)},
                        {"ts", interval.start_s * kMicrosecondsPerSecond},
                        {"dur", (interval.end_s - interval.start_s) * kMicrosecondsPerSecond},
                        {"args", {{"micro_batch", op.micro_batch}, {"layer", op.layer}}}});
    }
  }
  return {{"traceEvents", events}, {"displayTimeUnit", "ms"}};
}

} // namespace foldplan
