// The whole report as one self-contained HTML page (inline CSS and SVG, no script, nothing
// fetched): the plan's headline numbers, the search space with its Pareto fronts, folding against
// pre-folding, where the step's time goes, memory per pipeline stage, the simulated pipeline
// timeline, the MoE dispatcher's traffic under the chosen routing and, when given, predicted
// against measured times.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "parallel/plan.hpp"
#include "planner/search.hpp"
#include "report/validation_file.hpp"
#include "simulator/routing.hpp"

namespace foldplan::report {

struct ReportInput {
  Plan plan;          // the chosen plan, valid, with its prediction
  std::string origin; // how it was chosen: "the best plan of the search", "plan file p.json"
  std::optional<SearchResult> folded_search;   // the space with MoE Parallel Folding
  std::optional<SearchResult> unfolded_search; // the pre-folding space (ETP = TP, EP in DP)
  RoutingSpec routing;                         // the MoE routing the simulation uses
  std::vector<ValidationEntry> validation;     // empty: no such section
};

// The ids of the page's sections, in page order; the ones an input leaves out are absent.
inline constexpr const char* kSearchSpaceSection = "search-space";
inline constexpr const char* kFoldingSection = "folding";
inline constexpr const char* kCostSection = "cost-breakdown";
inline constexpr const char* kMemorySection = "memory";
inline constexpr const char* kTimelineSection = "timeline";
inline constexpr const char* kTrafficSection = "moe-traffic";
inline constexpr const char* kValidationSection = "validation";

struct RenderedReport {
  std::string html;
  std::vector<std::string> sections; // the ids of the sections present, in page order
  double simulated_step_time_s = 0;
};

// Simulates the plan (lowering under input.routing, event simulation with a timeline) and renders
// the page. InputError as lower_routed_plan for a routing that does not fit the model.
RenderedReport render_report(const ReportInput& input);

} // namespace foldplan::report
