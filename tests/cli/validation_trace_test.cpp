// `foldplan validate --trace` on a hand-made step (tests/cli/validation_fixture.hpp): for each
// program's measured rank a predicted and a measured process side by side, every op once on each,
// on its stream's thread, at the simulated times and at the measured offsets, in microseconds.
#include "cli/validation_trace.hpp"

#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "tests/cli/validation_fixture.hpp"

namespace foldplan::cli {
namespace {

using testing_cli::validation_measured;
using testing_cli::validation_prediction;
using testing_cli::validation_program;

nlohmann::json fixture_trace() {
  const StepProgram program = validation_program();
  return validation_trace(program, validation_measured(program), validation_prediction(program));
}

// The "X" events of process `pid`, by op name.
std::map<std::string, nlohmann::json> op_events(const nlohmann::json& trace, std::int64_t pid) {
  std::map<std::string, nlohmann::json> events;
  for (const nlohmann::json& event : trace["traceEvents"]) {
    if (event["ph"] == "X" && event["pid"] == pid) {
      EXPECT_FALSE(events.contains(event["name"])) << "twice: " << event["name"];
      events[event["name"].get<std::string>()] = event;
    }
  }
  return events;
}

std::string metadata_name(const nlohmann::json& trace, const char* what, std::int64_t pid,
                          std::int64_t tid) {
  for (const nlohmann::json& event : trace["traceEvents"]) {
    if (event["ph"] == "M" && event["name"] == what && event["pid"] == pid && event["tid"] == tid)
      return event["args"]["name"];
  }
  return "";
}

void expect_span(const nlohmann::json& event, double ts_us, double dur_us) {
  EXPECT_NEAR(event["ts"].get<double>(), ts_us, 1e-9) << event["name"];
  EXPECT_NEAR(event["dur"].get<double>(), dur_us, 1e-9) << event["name"];
}

TEST(ValidationTrace, EachProgramsMeasuredRankHasBothTimelinesSideBySide) {
  const nlohmann::json trace = fixture_trace();
  EXPECT_EQ(trace["displayTimeUnit"], "ms");
  // Program 0's measured rank is 1 (pids 2, 3), program 1's is 2 (pids 4, 5); no other process.
  std::set<std::int64_t> pids;
  for (const nlohmann::json& event : trace["traceEvents"])
    pids.insert(event["pid"].get<std::int64_t>());
  EXPECT_EQ(pids, (std::set<std::int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(metadata_name(trace, "process_name", 2, 0), "rank 1 predicted");
  EXPECT_EQ(metadata_name(trace, "process_name", 3, 0), "rank 1 measured");
  EXPECT_EQ(metadata_name(trace, "process_name", 4, 0), "rank 2 predicted");
  EXPECT_EQ(metadata_name(trace, "process_name", 5, 0), "rank 2 measured");
  const auto tp_comm = static_cast<std::int64_t>(stream_index(Stream::tp_comm));
  EXPECT_EQ(metadata_name(trace, "thread_name", 3, 0), "compute");
  EXPECT_EQ(metadata_name(trace, "thread_name", 3, tp_comm), "tp_comm");
  EXPECT_EQ(metadata_name(trace, "thread_name", 5, tp_comm), ""); // rank 2 does not communicate
}

TEST(ValidationTrace, EveryOpOnceOnEachSideAtItsPredictedAndMeasuredTimes) {
  const nlohmann::json trace = fixture_trace();
  const auto predicted_1 = op_events(trace, 2), measured_1 = op_events(trace, 3);
  const auto predicted_2 = op_events(trace, 4), measured_2 = op_events(trace, 5);
  ASSERT_EQ(predicted_1.size(), 2u);
  ASSERT_EQ(measured_1.size(), 2u);
  ASSERT_EQ(predicted_2.size(), 2u);
  ASSERT_EQ(measured_2.size(), 2u);
  // Simulated: fc1 0–3 ms, the all-reduce 3–5 ms; attention 0–4 ms, the norm 4–5.5 ms.
  expect_span(predicted_1.at("layer0.fc1.fwd"), 0, 3000);
  expect_span(predicted_1.at("layer0.tp_ar.fwd"), 3000, 2000);
  expect_span(predicted_2.at("layer1.attn.fwd"), 0, 4000);
  expect_span(predicted_2.at("layer1.norm.fwd"), 4000, 1500);
  // Rank 1's and rank 2's recorded offsets and durations.
  expect_span(measured_1.at("layer0.fc1.fwd"), 200, 3600);
  expect_span(measured_1.at("layer0.tp_ar.fwd"), 4500, 2800);
  expect_span(measured_2.at("layer1.attn.fwd"), 0, 5000);
  expect_span(measured_2.at("layer1.norm.fwd"), 5500, 2000);

  const nlohmann::json& all_reduce = measured_1.at("layer0.tp_ar.fwd");
  EXPECT_EQ(all_reduce["ph"], "X");
  EXPECT_EQ(all_reduce["tid"], stream_index(Stream::tp_comm));
  EXPECT_EQ(all_reduce["args"]["op"], 1);
  EXPECT_EQ(all_reduce["args"]["kind"], "collective");
  EXPECT_EQ(all_reduce["args"]["class"], "all-reduce");
  EXPECT_NEAR(all_reduce["args"]["predicted_ms"].get<double>(), 2.0, 1e-12);
  EXPECT_NEAR(all_reduce["args"]["measured_ms"].get<double>(), 2.8, 1e-12);
  EXPECT_NEAR(all_reduce["args"]["error"].get<double>(), 2.0 / 2.8 - 1, 1e-12);
  // Both sides carry the same comparison.
  EXPECT_EQ(predicted_1.at("layer0.tp_ar.fwd")["args"], all_reduce["args"]);
}

TEST(ValidationTrace, RefusesMeasurementsWithoutStartOffsets) {
  const StepProgram program = validation_program();
  runtime::MeasuredStep measured = validation_measured(program);
  measured.programs[1].op_start_s.clear();
  EXPECT_THROW(validation_trace(program, measured, validation_prediction(program)),
               std::invalid_argument);
}

} // namespace
} // namespace foldplan::cli
