#include "report/report_page.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/units.hpp"
#include "costmodel/cost_context.hpp"
#include "planner/plan_explanation.hpp"
#include "report/bar_chart.hpp"
#include "report/html_table.hpp"
#include "report/memory_chart.hpp"
#include "report/palette.hpp"
#include "report/search_space_chart.hpp"
#include "report/svg.hpp"
#include "report/time_unit.hpp"
#include "report/timeline_chart.hpp"
#include "report/traffic_heatmap.hpp"
#include "simulator/event_simulation.hpp"
#include "simulator/op_timer.hpp"
#include "simulator/routed_lowering.hpp"

namespace foldplan::report {
namespace {

// System fonts only: the page fetches nothing.
constexpr const char* kStyle = R"(
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "DejaVu Sans", Arial,
       sans-serif; color: #222; background: #fafafa; margin: 0; line-height: 1.45; }
main { max-width: 1140px; margin: 0 auto; padding: 28px 32px 48px; background: white;
       box-shadow: 0 0 12px rgba(0,0,0,0.06); }
h1 { font-size: 26px; margin: 0 0 4px; font-weight: 650; }
h2 { font-size: 19px; margin: 36px 0 6px; padding-bottom: 4px; border-bottom: 1px solid #e4e4e4;
     font-weight: 620; }
p.lead { color: #555; margin: 0 0 18px; }
p.note { color: #666; font-size: 13px; margin: 4px 0 10px; max-width: 900px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px;
         margin: 16px 0 8px; }
.card { border: 1px solid #e4e4e4; border-radius: 8px; padding: 10px 14px; }
.card .value { font-size: 22px; font-weight: 620; font-variant-numeric: tabular-nums; }
.card .label { font-size: 12px; color: #666; text-transform: uppercase; letter-spacing: .04em; }
table { border-collapse: collapse; margin: 10px 0 14px; font-size: 13.5px; }
th, td { padding: 5px 12px; border-bottom: 1px solid #ececec; text-align: left; }
th { background: #f4f4f4; font-weight: 600; border-bottom: 1px solid #d8d8d8; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
svg { display: block; margin: 6px 0 4px; max-width: 100%; height: auto;
      font-family: inherit; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px;
       background: #f3f3f3; padding: 1px 4px; border-radius: 3px; }
footer { margin-top: 40px; color: #888; font-size: 12px; }
)";

std::string percent(double fraction) {
  return fmt::format("{:.1f}%", 100 * fraction);
}

std::string card(const std::string& label, const std::string& value) {
  return fmt::format(R"(<div class="card"><div class="label">{}</div><div class="value">{}</div>)"
                     "</div>\n",
                     escape_xml(label), escape_xml(value));
}

std::string section(const char* id, const std::string& title, const std::string& body) {
  return fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n{}</section>\n", id, escape_xml(title),
                     body);
}

std::string note(const std::string& text) {
  return fmt::format("<p class=\"note\">{}</p>\n", escape_xml(text));
}

std::string configuration(const Plan& plan) {
  const ParallelConfig& c = plan.parallel;
  return fmt::format("TP{} CP{} PP{} VPP{} DP{} | ETP{} EP{} EDP{}", c.tp, c.cp, c.pp, c.vpp, c.dp,
                     c.etp, c.ep, c.edp);
}

SearchPoint point_of(const Plan& plan) {
  return {.step_time_s = plan.prediction->step_time_s,
          .peak_memory_bytes = plan.prediction->peak_memory_bytes,
          .folded = plan.options.folding,
          .index = 0,
          .parallel = plan.parallel,
          .micro_batch_size = plan.training.micro_batch_size,
          .recompute = plan.options.recompute};
}

std::string plan_table(const Plan& plan, const SimulationResult& simulated) {
  const Prediction& p = *plan.prediction;
  HtmlTable table({{"configuration"},
                   {"mbs", true},
                   {"recompute"},
                   {"dispatcher"},
                   {"folding"},
                   {"micro-batches", true},
                   {"estimated step", true},
                   {"simulated step", true},
                   {"MFU", true},
                   {"memory/GPU", true}});
  table.add_row({configuration(plan), std::to_string(plan.training.micro_batch_size),
                 to_string(plan.options.recompute), to_string(plan.options.dispatcher),
                 plan.options.folding ? "yes" : "no",
                 std::to_string(plan.training.global_batch_size /
                                (plan.training.micro_batch_size * plan.parallel.dp)),
                 units::format_time(p.step_time_s), units::format_time(simulated.step_time_s),
                 percent(p.mfu), units::format_bytes(p.peak_memory_bytes)});
  return table.str();
}

std::string search_space_section(const ReportInput& input) {
  SearchSpaceChart chart{.series = {},
                         .chosen = point_of(input.plan),
                         .gpu_memory_bytes = input.plan.cluster.gpu.hbm_bytes};
  std::string text;
  const auto add = [&](const std::optional<SearchResult>& result, const char* name,
                       std::string_view colour) {
    if (!result)
      return;
    chart.series.push_back({.name = name,
                            .colour = std::string(colour),
                            .sample = result->sampled_points,
                            .front = result->pareto_front});
    text += fmt::format("{}: {} points examined, {} valid and fitting (timed), {} on the Pareto "
                        "front. ",
                        name, result->evaluated, result->timed, result->pareto_front.size());
  };
  add(input.folded_search, "MoE Parallel Folding", kFoldedColour);
  add(input.unfolded_search, "no folding", kUnfoldedColour);
  return section(kSearchSpaceSection, "Search space",
                 note(text + "Every dot is a plan that fits (a uniform sample of at most " +
                      std::to_string(kMaxSampledPoints) +
                      " per series); the staircase is the Pareto front — the fastest plan within "
                      "each memory budget. Hover a point for its configuration.") +
                     render_search_space_chart(chart));
}

std::string folding_section(const ReportInput& input) {
  HtmlTable table({{"space"},
                   {"best configuration"},
                   {"mbs", true},
                   {"recompute"},
                   {"step", true},
                   {"MFU", true},
                   {"TFLOP/s/GPU", true},
                   {"memory/GPU", true},
                   {"vs folding", true}});
  const RankedPlan* folded = input.folded_search && !input.folded_search->plans.empty()
                                 ? &input.folded_search->plans[0]
                                 : nullptr;
  const auto add = [&](const char* name, const std::optional<SearchResult>& result) {
    if (!result)
      return;
    if (result->plans.empty()) {
      table.add_row({name, "no plan fits", "-", "-", "-", "-", "-", "-", "-"});
      return;
    }
    const Plan& plan = result->plans.front().plan;
    const Prediction& p = *plan.prediction;
    const double step = result->plans.front().ranking_step_time_s();
    table.add_row(
        {name, configuration(plan), std::to_string(plan.training.micro_batch_size),
         to_string(plan.options.recompute), units::format_time(step), percent(p.mfu),
         fmt::format("{:.1f} TFLOP/s", p.tflops_per_gpu), units::format_bytes(p.peak_memory_bytes),
         folded ? fmt::format("{:+.1f}%", 100 * (step / folded->ranking_step_time_s() - 1)) : "-"});
  };
  add("MoE Parallel Folding", input.folded_search);
  add("no folding (ETP = TP, EP in DP)", input.unfolded_search);
  return section(
      kFoldingSection, "Folding vs no folding",
      note("The best plan of each space (ranked by the event simulation where it "
           "re-ranked them). Folding decouples the MoE layers' mapping (ETP×EP×EDP) from "
           "attention's (TP×CP×DP).") +
          table.str());
}

std::string cost_section(const Plan& plan) {
  const Prediction& p = *plan.prediction;
  const TimeUnit unit = time_unit_for(p.step_time_s);
  BarChart chart{.title = "cost breakdown of the chosen plan",
                 .axis_label = fmt::format("time per step ({})", unit.symbol),
                 .groups = {},
                 .legend = {}};
  HtmlTable table({{"cost term"}, {"time per step", true}, {"share of step", true}});
  std::vector<std::pair<std::string, double>> terms(p.breakdown.begin(), p.breakdown.end());
  std::stable_sort(terms.begin(), terms.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [term, seconds] : terms) {
    if (seconds <= 0)
      continue;
    const std::string share = percent(seconds / p.step_time_s);
    chart.groups.push_back({.label = term,
                            .bars = {{.label = "",
                                      .value = seconds * unit.per_second,
                                      .colour = std::string(term_colour(term)),
                                      .annotation = units::format_time(seconds) + " · " + share}}});
    table.add_row({term, units::format_time(seconds), share});
  }
  table.add_row({"step", units::format_time(p.step_time_s), "100.0%"});
  return section(kCostSection, "Where the step goes",
                 note("The analytic estimate's terms on the critical pipeline stage: compute, "
                      "communication left exposed by kind, the pipeline bubble, and the data-"
                      "parallel tail with the optimizer step. They sum to the step time.") +
                     render_bar_chart(chart) + table.str());
}

std::string memory_section(const Plan& plan, const std::vector<MemoryBreakdown>& stages) {
  HtmlTable table({{"stage"},
                   {"layers", true},
                   {"weights", true},
                   {"gradients", true},
                   {"optimizer", true},
                   {"activations", true},
                   {"other", true},
                   {"total", true},
                   {"of capacity", true}});
  for (const MemoryBreakdown& stage : stages) {
    table.add_row(
        {std::to_string(stage.pp_rank), std::to_string(stage.layers),
         units::format_bytes(stage.weights_bytes), units::format_bytes(stage.gradients_bytes),
         units::format_bytes(stage.optimizer_bytes), units::format_bytes(stage.activations_bytes),
         units::format_bytes(stage.other_bytes), units::format_bytes(stage.total_bytes()),
         percent(stage.total_bytes() / plan.cluster.gpu.hbm_bytes)});
  }
  return section(
      kMemorySection, "Memory per pipeline stage",
      note(fmt::format("Peak bytes on one GPU of each pipeline stage against the {}'s "
                       "{} (distributed optimizer; activations of every micro-batch in "
                       "flight at the peak).",
                       plan.cluster.gpu.name, units::format_bytes(plan.cluster.gpu.hbm_bytes))) +
          render_memory_chart(stages, plan.cluster.gpu.hbm_bytes) + table.str());
}

// Rank 0's pipeline: the first rank of every stage of one DP replica.
std::vector<TimelineLane> pipeline_lanes(const Plan& plan, const StepProgram& program) {
  std::vector<std::int64_t> ranks;
  for (const CommGroup& family : program.groups) {
    if (family.name == "pp") {
      if (const auto* members = group_holding(family, 0))
        ranks = *members;
    }
  }
  if (ranks.empty()) {
    const std::int64_t stage_ranks = plan.parallel.world_size() / plan.parallel.pp;
    for (std::int64_t stage = 0; stage < plan.parallel.pp; ++stage)
      ranks.push_back(stage * stage_ranks);
  }
  std::vector<TimelineLane> lanes;
  for (std::size_t stage = 0; stage < ranks.size(); ++stage) {
    lanes.push_back(
        {.label = fmt::format("stage {} (rank {})", stage, ranks[stage]), .rank = ranks[stage]});
  }
  return lanes;
}

std::string timeline_section(const Plan& plan, const StepProgram& program,
                             const SimulationResult& simulated) {
  const RankSimulation& critical =
      simulated.ranks[static_cast<std::size_t>(simulated.critical_rank)];
  return section(
      kTimelineSection, "Pipeline timeline of one step",
      note(fmt::format("The event simulation of every rank's step program ({} programs); the "
                       "lanes are one data-parallel replica's pipeline stages: compute above, one "
                       "thin row per communication stream. Simulated step {}, critical rank {}, "
                       "compute idle {} of the step there. Hover a block for its ops.",
                       program.programs.size(), units::format_time(simulated.step_time_s),
                       simulated.critical_rank, percent(critical.bubble_fraction))) +
          render_timeline_chart(program, simulated, pipeline_lanes(plan, program)));
}

TrafficMatrix traffic_matrix(const DispatchResult& dispatch) {
  const std::int64_t ep = dispatch.geometry.ep;
  TrafficMatrix matrix{.size = ep,
                       .bytes = std::vector<double>(static_cast<std::size_t>(ep * ep), 0.0),
                       .description = ""};
  std::size_t all_to_alls = 0;
  for (const LayerDispatch& sample : dispatch.samples) {
    for (const AllToAllMatrix& rows : sample.ep_alltoall) {
      ++all_to_alls;
      for (std::size_t cell = 0; cell < rows.rows.size() && cell < matrix.bytes.size(); ++cell) {
        matrix.bytes[cell] +=
            static_cast<double>(rows.rows[cell]) * static_cast<double>(sample.bytes_per_row);
      }
    }
  }
  for (double& bytes : matrix.bytes)
    bytes /= static_cast<double>(std::max<std::size_t>(1, all_to_alls));
  matrix.description =
      fmt::format("One cell: the mean bytes of one dispatch all-to-all (one MoE layer, one "
                  "micro-batch, one ETP rank) over {} simulated ones; combine sends them back.",
                  all_to_alls);
  return matrix;
}

std::string traffic_section(const Plan& plan, const RoutedStep& routed,
                            const RoutingSpec& routing) {
  std::string body;
  if (!routed.dispatch) {
    body = note("The model has no routed experts.");
  } else if (plan.options.dispatcher == Dispatcher::allgather || plan.parallel.ep == 1) {
    body = note(fmt::format("The {} dispatcher with EP {} sends no all-to-all: every rank gathers "
                            "all tokens of its ETP×EP group. Busiest expert rank {:.2f}× the mean.",
                            to_string(plan.options.dispatcher), plan.parallel.ep,
                            routed.dispatch->max_load_factor));
  } else {
    const DispatchResult& dispatch = *routed.dispatch;
    body = note(fmt::format("Routing {}: the busiest EP rank computes {:.2f}× the mean rows "
                            "(mean over samples {:.2f}×), {} of routed tokens dropped. Rows sum "
                            "to what a rank sends, columns to what it receives.",
                            routing.text, dispatch.max_load_factor, dispatch.mean_load_factor,
                            percent(dispatch.dropped_fraction)));
    const TrafficMatrix matrix = traffic_matrix(dispatch);
    body += note(matrix.description) + render_traffic_heatmap(matrix);
  }
  return section(kTrafficSection, "MoE dispatcher traffic", body);
}

std::string validation_section(const std::vector<ValidationEntry>& entries) {
  double max_s = 0;
  for (const ValidationEntry& entry : entries)
    max_s = std::max({max_s, entry.predicted_s, entry.measured_s});
  const TimeUnit unit = time_unit_for(max_s);
  BarChart chart{.title = "predicted against measured",
                 .axis_label = fmt::format("time ({})", unit.symbol),
                 .groups = {},
                 .legend = {{"predicted", std::string(kPredictedColour)},
                            {"measured", std::string(kMeasuredColour)}}};
  HtmlTable table({{"step or op class"},
                   {"predicted", true},
                   {"measured", true},
                   {"measured / predicted − 1", true}});
  for (const ValidationEntry& entry : entries) {
    chart.groups.push_back({.label = entry.name,
                            .bars = {{.label = "predicted",
                                      .value = entry.predicted_s * unit.per_second,
                                      .colour = std::string(kPredictedColour),
                                      .annotation = format_time_in(entry.predicted_s, unit)},
                                     {.label = "measured",
                                      .value = entry.measured_s * unit.per_second,
                                      .colour = std::string(kMeasuredColour),
                                      .annotation = fmt::format(
                                          "{} ({:+.1f}%)", format_time_in(entry.measured_s, unit),
                                          100 * entry.error())}}});
    table.add_row({entry.name, units::format_time(entry.predicted_s),
                   units::format_time(entry.measured_s),
                   fmt::format("{:+.1f}%", 100 * entry.error())});
  }
  return section(kValidationSection, "Predicted vs measured",
                 note("From the validation file given with --validation (docs/report.md).") +
                     render_bar_chart(chart) + table.str());
}

} // namespace

RenderedReport render_report(const ReportInput& input) {
  RenderedReport report;
  const Plan& plan = input.plan;
  const CostContext context(plan.cluster, plan.gpus);
  const PlanExplanation explanation = explain_plan(plan, context, 0);
  const RoutedStep routed = lower_routed_plan(plan, input.routing);
  const CostModelOpTimer timer(context, routed.program);
  const SimulationResult simulated = simulate_step(
      routed.program, [&](const Op& op, std::int64_t rank) { return timer(op, rank); },
      {.record_timeline = true});
  const Prediction& p = *plan.prediction;

  const std::string title =
      fmt::format("{} on {} × {}", plan.model.name, plan.gpus, plan.cluster.gpu.name);
  std::string body = fmt::format("<h1>{}</h1>\n", escape_xml(title));
  body += fmt::format(
      "<p class=\"lead\">{}</p>\n",
      escape_xml(fmt::format("Cluster {}, sequence length {}, global batch {} sequences; {}: {}.",
                             plan.cluster.name, plan.training.seq_length,
                             plan.training.global_batch_size, input.origin, configuration(plan))));
  body += "<div class=\"cards\">\n";
  // The estimate assumes balanced routing; the simulation routes as asked, so say which.
  const bool balanced = input.routing.kind == RoutingKind::balanced;
  body += card(balanced ? "estimated step" : "estimated step (balanced)",
               units::format_time(p.step_time_s));
  body += card(balanced ? "simulated step" : "simulated step (" + input.routing.text + ")",
               units::format_time(simulated.step_time_s));
  body += card("MFU", percent(p.mfu));
  body += card("throughput per GPU", fmt::format("{:.0f} TFLOP/s", p.tflops_per_gpu));
  body += card("tokens per GPU", fmt::format("{:.0f} tok/s", p.tokens_per_s_per_gpu));
  body += card("peak memory per GPU", units::format_bytes(p.peak_memory_bytes));
  body += "</div>\n";
  body += plan_table(plan, simulated);
  const auto add = [&](const char* id, const std::string& html) {
    body += html;
    report.sections.emplace_back(id);
  };
  if (input.folded_search || input.unfolded_search) {
    add(kSearchSpaceSection, search_space_section(input));
    add(kFoldingSection, folding_section(input));
  }
  add(kCostSection, cost_section(plan));
  add(kMemorySection, memory_section(plan, explanation.stage_memory));
  add(kTimelineSection, timeline_section(plan, routed.program, simulated));
  if (plan.model.is_moe())
    add(kTrafficSection, traffic_section(plan, routed, input.routing));
  if (!input.validation.empty())
    add(kValidationSection, validation_section(input.validation));
  body += fmt::format("<footer>Generated by foldplan. Routing {}. All numbers are predictions of "
                      "the analytic cost model and the event simulation unless marked measured."
                      "</footer>\n",
                      escape_xml(input.routing.text));
  report.simulated_step_time_s = simulated.step_time_s;
  report.html =
      fmt::format("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                  "<title>foldplan report: {}</title>\n<style>{}</style>\n</head>\n<body>\n"
                  "<main>\n{}</main>\n</body>\n</html>\n",
                  escape_xml(title), kStyle, body);
  return report;
}

} // namespace foldplan::report
