#include "cli/step_validation.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/table.hpp"
#include "report/validation_file.hpp"

namespace foldplan::cli {
namespace {

std::vector<ValidationRow> compare_classes(const RankProgram& rank_program,
                                           const std::map<int, double>& measured_s,
                                           const std::map<int, double>& predicted_s) {
  const auto predicted = runtime::time_by_op_class(rank_program, predicted_s);
  std::vector<ValidationRow> rows;
  for (const runtime::ClassTime& entry : runtime::time_by_op_class(rank_program, measured_s)) {
    const auto other =
        std::find_if(predicted.begin(), predicted.end(), [&](const runtime::ClassTime& candidate) {
          return candidate.op_class == entry.op_class;
        });
    rows.push_back({.name = entry.op_class,
                    .ops = entry.ops,
                    .measured_s = entry.time_s,
                    .predicted_s = other == predicted.end() ? 0.0 : other->time_s});
  }
  return rows;
}

std::vector<ValidationRow> group_ops_by_name(const RankProgram& rank_program,
                                             const std::map<int, double>& measured_s,
                                             const std::map<int, double>& predicted_s) {
  std::vector<ValidationRow> groups;
  for (const Op& op : rank_program.ops) {
    const std::string name = op_group_name(op.name);
    auto group = std::find_if(groups.begin(), groups.end(),
                              [&](const ValidationRow& row) { return row.name == name; });
    if (group == groups.end())
      group = groups.insert(groups.end(), ValidationRow{.name = name});
    ++group->ops;
    group->measured_s += measured_s.at(op.id);
    group->predicted_s += predicted_s.at(op.id);
  }
  std::stable_sort(
      groups.begin(), groups.end(), [](const ValidationRow& a, const ValidationRow& b) {
        return std::abs(a.predicted_s - a.measured_s) > std::abs(b.predicted_s - b.measured_s);
      });
  return groups;
}

nlohmann::json row_to_json(const ValidationRow& row) {
  nlohmann::json json = nlohmann::json::object();
  if (row.ops > 0)
    json["ops"] = row.ops;
  json["measured_s"] = row.measured_s;
  json["predicted_s"] = row.predicted_s;
  json["relative_error"] = row.relative_error();
  return json;
}

std::vector<std::string> time_cells(const ValidationRow& row) {
  return {fmt::format("{:.3f}", row.measured_s * 1e3), fmt::format("{:.3f}", row.predicted_s * 1e3),
          row.measured_s > 0 ? fmt::format("{:+.1f}%", 100 * row.relative_error()) : "-"};
}

// "0-3" for a run of consecutive ranks, else the ranks listed.
std::string rank_list(const std::vector<std::int64_t>& ranks) {
  const bool consecutive = ranks.size() > 2 && ranks.back() - ranks.front() ==
                                                   static_cast<std::int64_t>(ranks.size()) - 1;
  return consecutive ? fmt::format("{}-{}", ranks.front(), ranks.back())
                     : fmt::format("{}", fmt::join(ranks, ","));
}

} // namespace

std::string op_group_name(const std::string& op_name) {
  constexpr std::string_view kLayer = "layer";
  if (op_name.rfind(kLayer, 0) != 0)
    return op_name;
  std::size_t position = kLayer.size();
  while (position < op_name.size() && std::isdigit(static_cast<unsigned char>(op_name[position])))
    ++position;
  if (position == kLayer.size() || position >= op_name.size() || op_name[position] != '.')
    return op_name;
  return op_name.substr(position + 1);
}

std::string validation_table(const StepValidation& validation, std::size_t top_ops) {
  const ProgramValidation& slowest = validation.programs.at(validation.slowest_program);
  Table table({{fmt::format("rank {} (slowest)", validation.slowest_rank), Align::left},
               {"ops", Align::right},
               {"measured ms", Align::right},
               {"predicted ms", Align::right},
               {"error", Align::right}});
  const auto add = [&table](const ValidationRow& row) {
    std::vector<std::string> cells = {row.name, row.ops > 0 ? std::to_string(row.ops) : ""};
    for (std::string& cell : time_cells(row))
      cells.push_back(std::move(cell));
    table.add_row(std::move(cells));
  };
  add(validation.step);
  for (const ValidationRow& row : slowest.classes)
    add(row);
  std::string text = table.render();
  text += "(error = predicted / measured - 1; class times are op times summed over the step, and "
          "ops on different streams overlap)\n";
  if (top_ops > 0 && !validation.ops_by_name.empty()) {
    Table ops({{"largest differences", Align::left},
               {"ops", Align::right},
               {"measured ms", Align::right},
               {"predicted ms", Align::right},
               {"error", Align::right}});
    for (std::size_t index = 0; index < std::min(top_ops, validation.ops_by_name.size()); ++index) {
      const ValidationRow& row = validation.ops_by_name[index];
      std::vector<std::string> cells = {row.name, std::to_string(row.ops)};
      for (std::string& cell : time_cells(row))
        cells.push_back(std::move(cell));
      ops.add_row(std::move(cells));
    }
    text += "\n" + ops.render() +
            "(ops of one name summed over layers and micro-batches, on the slowest rank)\n";
  }
  if (validation.programs.size() < 2)
    return text;
  Table programs({{"program ranks", Align::left},
                  {"measured rank", Align::right},
                  {"measured ms", Align::right},
                  {"predicted ms", Align::right},
                  {"error", Align::right}});
  for (const ProgramValidation& program : validation.programs) {
    std::vector<std::string> cells = {rank_list(program.ranks),
                                      std::to_string(program.measured_rank)};
    for (std::string& cell : time_cells(program.step))
      cells.push_back(std::move(cell));
    programs.add_row(std::move(cells));
  }
  return text +
         "\nevery program's step (its slowest rank; predicted: the rank's simulated "
         "finish):\n" +
         programs.render();
}

StepValidation compare_step(const StepProgram& program, const runtime::MeasuredStep& measured,
                            const RunPrediction& prediction) {
  if (measured.programs.size() != program.programs.size() ||
      prediction.op_time_s.size() != program.programs.size())
    throw std::invalid_argument("compare_step: measured and predicted are of another program");
  StepValidation validation{.step = {.name = "step",
                                     .measured_s = measured.step_time_s,
                                     .predicted_s = prediction.step_time_s},
                            .slowest_rank = measured.slowest_rank};
  for (std::size_t index = 0; index < program.programs.size(); ++index) {
    const runtime::MeasuredProgram& measured_program = measured.programs[index];
    const auto rank = static_cast<std::size_t>(measured_program.measured_rank);
    if (std::find(measured_program.ranks.begin(), measured_program.ranks.end(),
                  measured.slowest_rank) != measured_program.ranks.end())
      validation.slowest_program = index;
    validation.programs.push_back(
        {.ranks = measured_program.ranks,
         .measured_rank = measured_program.measured_rank,
         .step = {.name = "step",
                  .measured_s = measured.rank_step_time_s.at(rank),
                  .predicted_s = prediction.simulation.ranks.at(rank).finish_s},
         .classes = compare_classes(program.programs[index], measured_program.op_time_s,
                                    prediction.op_time_s[index])});
  }
  const std::size_t slowest = validation.slowest_program;
  validation.ops_by_name =
      group_ops_by_name(program.programs[slowest], measured.programs[slowest].op_time_s,
                        prediction.op_time_s[slowest]);
  return validation;
}

nlohmann::json validation_to_json(const StepValidation& validation,
                                  const runtime::MeasuredStep& measured,
                                  const ValidationSubject& subject) {
  nlohmann::json json = {{"schema", report::kValidationSchema},
                         {"plan", subject.plan_path},
                         {"model", subject.model},
                         {"layers", subject.layers},
                         {"device", measured.device},
                         {"world_size", measured.world_size},
                         {"routing", subject.routing},
                         {"calibration", subject.calibration},
                         {"warmup_steps", measured.warmup_steps},
                         {"timed_steps", measured.timed_steps},
                         {"slowest_rank", validation.slowest_rank}};
  if (subject.attention_note)
    json["attention_note"] = *subject.attention_note;
  json["step"] = row_to_json(validation.step);
  for (const ValidationRow& row : validation.programs.at(validation.slowest_program).classes)
    json[row.name] = row_to_json(row);
  nlohmann::json programs = nlohmann::json::array();
  for (const ProgramValidation& program : validation.programs) {
    nlohmann::json classes = nlohmann::json::object();
    for (const ValidationRow& row : program.classes)
      classes[row.name] = row_to_json(row);
    programs.push_back({{"ranks", program.ranks},
                        {"measured_rank", program.measured_rank},
                        {"step", row_to_json(program.step)},
                        {"classes", std::move(classes)}});
  }
  json["programs"] = std::move(programs);
  nlohmann::json ops_by_name = nlohmann::json::array();
  for (const ValidationRow& row : validation.ops_by_name) {
    nlohmann::json entry = row_to_json(row);
    entry["name"] = row.name;
    ops_by_name.push_back(std::move(entry));
  }
  json["ops_by_name"] = std::move(ops_by_name);
  return json;
}

} // namespace foldplan::cli
