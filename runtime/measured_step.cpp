#include "runtime/measured_step.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "core/json_object.hpp"
#include "core/schema_version.hpp"

namespace foldplan::runtime {
namespace {

constexpr std::array<std::string_view, 9> kClasses = {
    "GEMM",           "attention",  "memory-bound", "all-reduce", "all-gather",
    "reduce-scatter", "all-to-all", "all-to-all-v", "send/recv"};

nlohmann::json seconds_by_op_to_json(const std::map<int, double>& seconds_by_op) {
  nlohmann::json times = nlohmann::json::object();
  for (const auto& [id, seconds] : seconds_by_op)
    times[std::to_string(id)] = seconds;
  return times;
}

nlohmann::json program_to_json(const MeasuredProgram& program) {
  nlohmann::json json = {{"ranks", program.ranks},
                         {"measured_rank", program.measured_rank},
                         {"op_time_s", seconds_by_op_to_json(program.op_time_s)}};
  if (!program.op_start_s.empty())
    json["op_start_s"] = seconds_by_op_to_json(program.op_start_s);
  return json;
}

// The map under `key` (op id → seconds); an absent optional key reads as empty.
std::map<int, double> seconds_by_op_from_json(JsonObject& object, const std::string& key,
                                              bool required) {
  std::map<int, double> seconds_by_op;
  if (!required && object.optional_value(key) == nullptr)
    return seconds_by_op;
  for (const auto& [id, seconds] : object.number_map(key)) {
    const std::string field = object.field(key) + "." + id;
    std::size_t parsed = 0;
    int value = 0;
    try {
      value = std::stoi(id, &parsed);
    } catch (const std::logic_error&) {
      parsed = 0;
    }
    if (parsed != id.size() || value < 0)
      throw InputError(field, "an op id is a non-negative integer");
    seconds_by_op.emplace(value, seconds);
  }
  return seconds_by_op;
}

MeasuredProgram program_from_json(const nlohmann::json& json, const std::string& path) {
  JsonObject object(json, path);
  MeasuredProgram program{.ranks = object.integer_list("ranks"),
                          .measured_rank = object.integer("measured_rank"),
                          .op_time_s = seconds_by_op_from_json(object, "op_time_s", true),
                          .op_start_s = seconds_by_op_from_json(object, "op_start_s", false)};
  object.reject_unknown_keys();
  return program;
}

nlohmann::json check_to_json(const MoeCheckOutcome& check) {
  return {{"layer", check.layer},
          {"rank", check.rank},
          {"name", check.name},
          {"passed", check.passed},
          {"detail", check.detail}};
}

MoeCheckOutcome check_from_json(const nlohmann::json& json, const std::string& path) {
  JsonObject object(json, path);
  MoeCheckOutcome check{.layer = object.string("layer"),
                        .rank = object.integer("rank"),
                        .name = object.string("name"),
                        .passed = object.boolean("passed"),
                        .detail = object.string_or("detail", "")};
  object.reject_unknown_keys();
  return check;
}

} // namespace

MeasuredStep summarize_measurements(const StepProgram& program,
                                    const std::vector<RankMeasurement>& ranks,
                                    const std::string& device, int warmup_steps, int timed_steps) {
  if (static_cast<std::int64_t>(ranks.size()) != program.world_size)
    throw std::invalid_argument("summarize_measurements: one measurement per rank");
  MeasuredStep measured{.device = device,
                        .world_size = program.world_size,
                        .warmup_steps = warmup_steps,
                        .timed_steps = timed_steps};
  measured.rank_step_time_s.assign(ranks.size(), 0.0);
  for (const RankMeasurement& rank : ranks)
    measured.rank_step_time_s.at(static_cast<std::size_t>(rank.rank)) = rank.step_time_s;
  const auto slowest =
      std::max_element(measured.rank_step_time_s.begin(), measured.rank_step_time_s.end());
  measured.step_time_s = *slowest;
  measured.slowest_rank = slowest - measured.rank_step_time_s.begin();
  for (const RankProgram& rank_program : program.programs) {
    MeasuredProgram entry{.ranks = rank_program.ranks, .measured_rank = rank_program.ranks.front()};
    for (const std::int64_t rank : rank_program.ranks) {
      if (measured.rank_step_time_s[static_cast<std::size_t>(rank)] >
          measured.rank_step_time_s[static_cast<std::size_t>(entry.measured_rank)])
        entry.measured_rank = rank;
    }
    const auto source = std::find_if(ranks.begin(), ranks.end(), [&](const RankMeasurement& r) {
      return r.rank == entry.measured_rank;
    });
    for (std::size_t index = 0; index < rank_program.ops.size(); ++index) {
      entry.op_time_s.emplace(rank_program.ops[index].id, source->op_time_s.at(index));
      if (!source->op_start_s.empty())
        entry.op_start_s.emplace(rank_program.ops[index].id, source->op_start_s.at(index));
    }
    measured.programs.push_back(std::move(entry));
  }
  return measured;
}

nlohmann::json measured_step_to_json(const MeasuredStep& measured) {
  nlohmann::json programs = nlohmann::json::array();
  for (const MeasuredProgram& program : measured.programs)
    programs.push_back(program_to_json(program));
  nlohmann::json checks = nlohmann::json::array();
  for (const MoeCheckOutcome& check : measured.moe_checks)
    checks.push_back(check_to_json(check));
  return {{"schema", measured.schema},
          {"device", measured.device},
          {"world_size", measured.world_size},
          {"warmup_steps", measured.warmup_steps},
          {"timed_steps", measured.timed_steps},
          {"step_time_s", measured.step_time_s},
          {"slowest_rank", measured.slowest_rank},
          {"rank_step_time_s", measured.rank_step_time_s},
          {"programs", std::move(programs)},
          {"moe_checks", std::move(checks)},
          {"metadata", measured.metadata}};
}

MeasuredStep measured_step_from_json(const nlohmann::json& json) {
  JsonObject object(json, "measured");
  MeasuredStep measured{.schema = object.string("schema")};
  check_schema_version(measured.schema, kMeasuredSchema, "measured step", object.field("schema"));
  measured.device = object.string("device");
  measured.world_size = object.positive_integer("world_size");
  measured.warmup_steps = static_cast<int>(object.non_negative_integer_or("warmup_steps", 0));
  measured.timed_steps = static_cast<int>(object.positive_integer("timed_steps"));
  measured.step_time_s = object.number("step_time_s");
  measured.slowest_rank = object.integer("slowest_rank");
  const nlohmann::json& step_times = object.array("rank_step_time_s");
  for (std::size_t index = 0; index < step_times.size(); ++index) {
    measured.rank_step_time_s.push_back(json_to_number(
        step_times[index], fmt::format("{}[{}]", object.field("rank_step_time_s"), index)));
  }
  const nlohmann::json& programs = object.array("programs");
  for (std::size_t index = 0; index < programs.size(); ++index) {
    measured.programs.push_back(
        program_from_json(programs[index], fmt::format("{}[{}]", object.field("programs"), index)));
  }
  if (const nlohmann::json* checks = object.optional_value("moe_checks")) {
    for (std::size_t index = 0; index < checks->size(); ++index) {
      measured.moe_checks.push_back(check_from_json(
          (*checks)[index], fmt::format("{}[{}]", object.field("moe_checks"), index)));
    }
  }
  if (const nlohmann::json* metadata = object.optional_value("metadata"))
    measured.metadata = *metadata;
  object.reject_unknown_keys();
  return measured;
}

std::string_view op_class(const Op& op) {
  switch (op.kind) {
  case OpKind::gemm:
    return kClasses[0];
  case OpKind::attention:
    return kClasses[1];
  case OpKind::memory_bound:
    return kClasses[2];
  case OpKind::collective:
    return kClasses[3 + static_cast<std::size_t>(std::get<CollectiveShape>(op.shape).op)];
  case OpKind::send:
  case OpKind::recv:
    return kClasses[8];
  }
  return kClasses[2];
}

std::vector<ClassTime> time_by_op_class(const RankProgram& program,
                                        const std::map<int, double>& op_time_s) {
  std::array<ClassTime, kClasses.size()> sums{};
  for (const Op& op : program.ops) {
    const auto found = op_time_s.find(op.id);
    if (found == op_time_s.end())
      continue;
    const auto slot = static_cast<std::size_t>(
        std::find(kClasses.begin(), kClasses.end(), op_class(op)) - kClasses.begin());
    sums[slot].time_s += found->second;
    ++sums[slot].ops;
  }
  std::vector<ClassTime> classes;
  for (std::size_t slot = 0; slot < kClasses.size(); ++slot) {
    if (sums[slot].ops == 0)
      continue;
    sums[slot].op_class = std::string(kClasses[slot]);
    classes.push_back(sums[slot]);
  }
  return classes;
}

} // namespace foldplan::runtime
