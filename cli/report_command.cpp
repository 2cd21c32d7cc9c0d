// `foldplan report`: one self-contained HTML page about a plan — the search space with its Pareto
// fronts, folding against pre-folding, the cost and memory breakdowns, the simulated pipeline
// timeline, the MoE traffic under --routing, and predicted against measured (--validation).
// Either searches with `foldplan search`'s flags and reports the best plan, or reports PLAN.json
// against the default space of its model, cluster and batch.
#include <fmt/format.h>

#include "cli/command.hpp"
#include "cli/search_flags.hpp"
#include "core/errors.hpp"
#include "core/file_io.hpp"
#include "core/units.hpp"
#include "costmodel/cost_context.hpp"
#include "costmodel/step_estimate.hpp"
#include "report/report_page.hpp"

namespace foldplan::cli {
namespace {

struct ReportFlags : SearchFlags {
  std::string plan_path;
  std::string output;
  std::string routing = "balanced";
  std::string validation;
  bool json = false;
};

report::ReportInput input_from_flags(const ReportFlags& flags) {
  report::ReportInput input;
  const SearchProgress progress = progress_reporter(flags.progress);
  if (!flags.plan_path.empty()) {
    input.plan = load_plan(flags.plan_path);
    if (!input.plan.prediction) {
      const CostContext context(input.plan.cluster, input.plan.gpus);
      input.plan.prediction = estimate_step(context, input.plan).prediction;
    }
    input.origin = fmt::format("plan file {}", flags.plan_path);
    input.folded_search = search(search_request_around(input.plan, true), progress);
    input.unfolded_search = search(search_request_around(input.plan, false), progress);
  } else {
    input.folded_search = search(request_from_flags(flags, true), progress);
    input.unfolded_search = search(request_from_flags(flags, false), progress);
    const SearchResult& chosen_space =
        flags.no_folding ? *input.unfolded_search : *input.folded_search;
    if (chosen_space.plans.empty()) {
      throw InputError("search", "no plan of the space is valid and fits; `foldplan search` with "
                                 "the same flags lists the rejected points by reason");
    }
    input.plan = chosen_space.plans.front().plan;
    input.origin = flags.no_folding ? "the best plan without folding" : "the best plan found";
  }
  input.routing = parse_routing_spec(flags.routing);
  if (!flags.validation.empty())
    input.validation = report::load_validation(flags.validation);
  return input;
}

// A plan file fixes the model, cluster, batch and options: search flags beside it would be
// silently ignored. (A flag given with its default value cannot be told apart, and is harmless.)
void reject_search_flags_beside_a_plan(const ReportFlags& flags) {
  const SearchFlags defaults;
  const std::pair<const char*, bool> given[] = {
      {"--model", flags.model != defaults.model},
      {"--cluster", flags.cluster != defaults.cluster},
      {"--gpus", flags.gpus != defaults.gpus},
      {"--seq", flags.seq != defaults.seq},
      {"--gbs", flags.gbs != defaults.gbs},
      {"--tp", !flags.tp.empty()},
      {"--cp", !flags.cp.empty()},
      {"--pp", !flags.pp.empty()},
      {"--vpp", !flags.vpp.empty()},
      {"--ep", !flags.ep.empty()},
      {"--etp", !flags.etp.empty()},
      {"--mbs", !flags.mbs.empty()},
      {"--recompute", !flags.recompute.empty()},
      {"--dispatcher", !flags.dispatcher.empty()},
      {"--capacity", !flags.capacity.empty()},
      {"--no-folding", flags.no_folding},
      {"--fp8", !flags.fp8.empty()},
      {"--cp-comm-type", flags.cp_comm_type != defaults.cp_comm_type},
      {"--no-overlap-grad-reduce", flags.no_overlap_grad_reduce},
      {"--overlap-ep-comm", flags.overlap_ep_comm},
      {"--calibration", !flags.calibration.empty()},
  };
  for (const auto& [flag, is_given] : given) {
    if (is_given) {
      throw InputError(flag, "not used with a plan file, which fixes the model, cluster, batch "
                             "and options");
    }
  }
}

int run_report(const ReportFlags& flags) {
  if (!flags.plan_path.empty())
    reject_search_flags_beside_a_plan(flags);
  const report::ReportInput input = input_from_flags(flags);
  const report::RenderedReport report = report::render_report(input);
  write_file_atomically(flags.output, report.html);
  if (flags.json) {
    const nlohmann::json json = {{"output", flags.output},
                                 {"bytes", report.html.size()},
                                 {"sections", report.sections},
                                 {"step_time_s", input.plan.prediction->step_time_s},
                                 {"simulated_step_time_s", report.simulated_step_time_s},
                                 {"plan", plan_to_json(input.plan)}};
    fmt::print("{}\n", json.dump(2));
    return 0;
  }
  fmt::print("wrote {} ({}): {}, estimated step {}, simulated {}; open it in a browser\n",
             flags.output, units::format_bytes(static_cast<double>(report.html.size())),
             input.origin, units::format_time(input.plan.prediction->step_time_s),
             units::format_time(report.simulated_step_time_s));
  return 0;
}

} // namespace

void add_report_command(CLI::App& app, CommandAction& chosen) {
  auto flags = std::make_shared<ReportFlags>();
  CLI::App* command = app.add_subcommand(
      "report", "Write one self-contained HTML report of a plan (or of the best plan a search "
                "finds): search space, breakdowns, timeline, MoE traffic");
  command->add_option("plan", flags->plan_path,
                      "a plan file to report; without it, search with the flags below");
  add_search_flags(*command, *flags);
  command->add_option("-o,--output", flags->output, "the HTML file to write")->required();
  command
      ->add_option("--routing", flags->routing,
                   "MoE routing: balanced, uniform, zipf:S, dirichlet:A or a histogram file")
      ->capture_default_str();
  command->add_option("--validation", flags->validation,
                      "predicted vs measured times to draw (JSON, see docs/report.md)");
  command->add_flag("--json", flags->json, "print a summary of what was written as JSON");
  command->callback([&chosen, flags] { chosen = [flags] { return run_report(*flags); }; });
}

} // namespace foldplan::cli
