// `foldplan search`: the best parallel configurations of a model on a cluster, ranked, with why
// the top ones win; `--compare-folding` puts the best folded and pre-folding plans side by side.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "cli/command.hpp"
#include "cli/plan_flags.hpp"
#include "cli/search_flags.hpp"
#include "cli/table.hpp"
#include "core/errors.hpp"
#include "core/units.hpp"
#include "planner/search.hpp"

namespace foldplan::cli {
namespace {

struct SearchCommandFlags : SearchFlags {
  bool compare_folding = false;
  std::int64_t top = 5;
  std::int64_t simulate_top = 3;
  bool json = false;
  std::string output;
};

std::string percent(double fraction) {
  return fmt::format("{:.1f}%", 100 * fraction);
}

// The largest terms of a plan's step, as shares: what a plan spends its time on.
std::string dominant_costs(const Prediction& prediction, std::size_t count) {
  std::vector<std::pair<std::string, double>> terms(prediction.breakdown.begin(),
                                                    prediction.breakdown.end());
  std::sort(terms.begin(), terms.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string text;
  for (std::size_t i = 0; i < std::min(count, terms.size()); ++i) {
    if (terms[i].second <= 0)
      break;
    text += fmt::format("{}{} {}", i == 0 ? "" : ", ", terms[i].first,
                        percent(terms[i].second / prediction.step_time_s));
  }
  return text;
}

// One line on why `plan` beats `next`: the terms where it saves the most time.
std::string advantage_over(const Prediction& plan, const Prediction& next) {
  std::vector<std::pair<std::string, double>> savings;
  for (const auto& [term, seconds] : next.breakdown) {
    const auto mine = plan.breakdown.find(term);
    const double saved = seconds - (mine == plan.breakdown.end() ? 0.0 : mine->second);
    if (saved > 0)
      savings.emplace_back(term, saved);
  }
  std::sort(savings.begin(), savings.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string text;
  for (std::size_t i = 0; i < std::min<std::size_t>(2, savings.size()); ++i) {
    text += fmt::format("{}{} -{}", i == 0 ? "" : ", ", savings[i].first,
                        units::format_time(savings[i].second));
  }
  return text.empty() ? "no single term" : text;
}

Table plan_table(const std::vector<RankedPlan>& plans, bool show_dispatch) {
  std::vector<Table::Column> columns = {
      {"#", Align::right},   {"TP", Align::right},  {"CP", Align::right},      {"PP", Align::right},
      {"VPP", Align::right}, {"|", Align::left},    {"ETP", Align::right},     {"EP", Align::right},
      {"EDP", Align::right}, {"mbs", Align::right}, {"recompute", Align::left}};
  if (show_dispatch) {
    columns.push_back({"dispatcher", Align::left});
    columns.push_back({"capacity", Align::left});
  }
  for (Table::Column column :
       {Table::Column{"step", Align::right}, Table::Column{"simulated", Align::right},
        Table::Column{"MFU", Align::right}, Table::Column{"TFLOP/s/GPU", Align::right},
        Table::Column{"memory/GPU", Align::right}}) {
    columns.push_back(column);
  }
  Table table(columns);
  for (std::size_t i = 0; i < plans.size(); ++i) {
    const Plan& plan = plans[i].plan;
    const ParallelConfig& c = plan.parallel;
    const Prediction& p = *plan.prediction;
    std::vector<std::string> row = {std::to_string(i + 1),
                                    std::to_string(c.tp),
                                    std::to_string(c.cp),
                                    std::to_string(c.pp),
                                    std::to_string(c.vpp),
                                    "|",
                                    std::to_string(c.etp),
                                    std::to_string(c.ep),
                                    std::to_string(c.edp),
                                    std::to_string(plan.training.micro_batch_size),
                                    to_string(plan.options.recompute)};
    if (show_dispatch) {
      row.push_back(to_string(plan.options.dispatcher));
      row.push_back(to_string(CapacityPolicy{.capacity_factor = plan.options.capacity_factor,
                                             .pad_to_capacity = plan.options.pad_to_capacity}));
    }
    row.push_back(units::format_time(p.step_time_s));
    row.push_back(
        plans[i].simulated_step_time_s ? units::format_time(*plans[i].simulated_step_time_s) : "-");
    row.push_back(percent(p.mfu));
    row.push_back(fmt::format("{:.1f}", p.tflops_per_gpu));
    row.push_back(units::format_bytes(p.peak_memory_bytes));
    table.add_row(std::move(row));
  }
  return table;
}

void print_result(const SearchRequest& request, const SearchResult& result) {
  fmt::print("{} on {} x {} ({}), seq {}, GBS {}, {}\n", request.model.name, request.gpus,
             request.cluster.gpu.name, request.cluster.name, request.training.seq_length,
             request.training.global_batch_size,
             request.space.folding ? "MoE Parallel Folding" : "no folding (ETP = TP, EP in DP)");
  fmt::print("{} points examined, {} timed, {} rejected, in {}\n\n", result.evaluated, result.timed,
             result.evaluated - result.timed, units::format_time(result.elapsed_s));
  if (result.plans.empty()) {
    fmt::print("no plan is valid and fits; rejected points by reason:\n");
  } else {
    fmt::print("{}\n", plan_table(result.plans, request.model.is_moe()).render());
    fmt::print("why the best win:\n");
    const std::size_t explained = std::min<std::size_t>(3, result.plans.size());
    for (std::size_t i = 0; i < explained; ++i) {
      const Prediction& p = *result.plans[i].plan.prediction;
      std::string line = fmt::format("  #{}: {}", i + 1, dominant_costs(p, 3));
      if (i + 1 < result.plans.size()) {
        line += fmt::format("; ahead of #{} on {}", i + 2,
                            advantage_over(p, *result.plans[i + 1].plan.prediction));
      }
      fmt::print("{}\n", line);
    }
    if (result.plans.front().simulated_step_time_s) {
      fmt::print("  (the first {} re-ranked by the event simulation, which plays every op)\n",
                 std::min<std::int64_t>(request.simulate_top,
                                        static_cast<std::int64_t>(result.plans.size())));
    }
    if (result.simulation_skipped) {
      fmt::print("  (not re-ranked by the event simulation: {})\n", *result.simulation_skipped);
    }
    fmt::print("\nrejected points by reason:\n");
  }
  Table rejected({{"reason", Align::left}, {"points", Align::right}});
  std::vector<std::pair<std::string, std::int64_t>> reasons(result.rejected.begin(),
                                                            result.rejected.end());
  std::sort(reasons.begin(), reasons.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [reason, count] : reasons)
    rejected.add_row({reason, std::to_string(count)});
  fmt::print("{}", rejected.render());
}

SearchRequest ranked_request(const SearchCommandFlags& flags, bool folding) {
  SearchRequest request = request_from_flags(flags, folding);
  request.top_k = flags.top;
  request.simulate_top = flags.simulate_top;
  return request;
}

int run_search(const SearchCommandFlags& flags) {
  if (flags.compare_folding && flags.no_folding) {
    throw InputError("--compare-folding", "searches both spaces; drop --no-folding");
  }
  const SearchRequest request = ranked_request(flags, !flags.no_folding);
  const SearchResult result = search(request, progress_reporter(flags.progress));
  if (!flags.output.empty() && !result.plans.empty())
    save_plan(result.plans.front().plan, flags.output);
  std::optional<SearchResult> unfolded;
  SearchRequest unfolded_request;
  if (flags.compare_folding) {
    unfolded_request = ranked_request(flags, false);
    unfolded = search(unfolded_request, progress_reporter(flags.progress));
  }
  if (flags.json) {
    nlohmann::json json = search_result_to_json(result);
    if (unfolded)
      json["no_folding"] = search_result_to_json(*unfolded);
    fmt::print("{}\n", json.dump(2));
    return result.plans.empty() ? 1 : 0;
  }
  print_result(request, result);
  if (unfolded) {
    fmt::print("\n");
    print_result(unfolded_request, *unfolded);
    if (!result.plans.empty() && !unfolded->plans.empty()) {
      const Prediction& folded = *result.plans.front().plan.prediction;
      const Prediction& plain = *unfolded->plans.front().plan.prediction;
      fmt::print("\nfolding vs no folding (bests): {} vs {} MFU, step {} vs {} ({:+.1f}%)\n",
                 percent(folded.mfu), percent(plain.mfu), units::format_time(folded.step_time_s),
                 units::format_time(plain.step_time_s),
                 100 * (folded.step_time_s / plain.step_time_s - 1));
    }
  }
  if (!flags.output.empty() && !result.plans.empty())
    fmt::print("\nbest plan written to {}\n", flags.output);
  return result.plans.empty() ? 1 : 0;
}

} // namespace

void add_search_command(CLI::App& app, CommandAction& chosen) {
  auto flags = std::make_shared<SearchCommandFlags>();
  CLI::App* command = app.add_subcommand(
      "search", "Search the folded parallel space for the fastest plans that fit");
  add_search_flags(*command, *flags);
  command->add_flag("--compare-folding", flags->compare_folding,
                    "search with and without folding and compare the bests");
  command->add_option("--top", flags->top, "plans to show")->capture_default_str();
  command
      ->add_option("--simulate-top", flags->simulate_top,
                   "re-rank this many of the best with the event simulation (0: off)")
      ->capture_default_str();
  command->add_flag("--json", flags->json, "print the result as JSON");
  command->add_option("-o,--output", flags->output, "write the best plan here");
  command->callback([&chosen, flags] { chosen = [flags] { return run_search(*flags); }; });
}

} // namespace foldplan::cli
