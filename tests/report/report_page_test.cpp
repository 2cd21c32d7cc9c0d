// The whole page from a real plan: every section present, a self-contained document (nothing
// fetched, no script), user-controlled text escaped.
#include "report/report_page.hpp"

#include <regex>

#include <gtest/gtest.h>

#include "costmodel/cost_context.hpp"
#include "costmodel/step_estimate.hpp"
#include "tests/simulator/test_plans.hpp"

namespace foldplan::report {
namespace {

Plan small_plan() {
  Plan plan = testing_plans::make_plan("mixtral-8x7b", 16, {.tp = 2, .pp = 2, .ep = 8}, 32);
  const CostContext context(plan.cluster, plan.gpus);
  plan.prediction = estimate_step(context, plan).prediction;
  return plan;
}

SearchResult small_search(const Plan& plan, bool folding) {
  SearchRequest request = search_request_around(plan, folding);
  request.simulate_top = 0;
  request.top_k = 1;
  return search(request);
}

TEST(ReportPage, HasEverySectionAndFetchesNothing) {
  ReportInput input;
  input.plan = small_plan();
  input.plan.model.name = "<script>alert('x')</script>";
  input.origin = "plan file a&b.json";
  input.folded_search = small_search(input.plan, true);
  input.unfolded_search = small_search(input.plan, false);
  input.routing = parse_routing_spec("zipf:1.2");
  input.validation = {{.name = "step", .predicted_s = 1.0, .measured_s = 1.1}};
  const RenderedReport report = render_report(input);
  const std::string& html = report.html;

  EXPECT_EQ(report.sections, (std::vector<std::string>{
                                 kSearchSpaceSection, kFoldingSection, kCostSection, kMemorySection,
                                 kTimelineSection, kTrafficSection, kValidationSection}));
  for (const std::string& id : report.sections)
    EXPECT_NE(html.find("<section id=\"" + id + "\">"), std::string::npos) << id;
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("</html>\n"), std::string::npos);
  // Self-contained: no URL of any scheme, no script, no external resource attribute.
  EXPECT_FALSE(std::regex_search(html, std::regex(R"([a-z]+://)"))) << "a URL in the page";
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("plan file a&amp;b.json"), std::string::npos);
  // Units on the axes of every chart.
  for (const char* axis : {"peak memory per GPU (GB)", "memory per GPU (GB)", "time per step (",
                           "time in the step (", "destination EP rank"})
    EXPECT_NE(html.find(axis), std::string::npos) << axis;
  // The chosen plan's step appears in the cards, and the simulation ran.
  EXPECT_GT(report.simulated_step_time_s, 0);
  EXPECT_NE(html.find("+10.0%"), std::string::npos); // measured 10% over predicted
  // The estimate is balanced, the simulation skewed: the cards say which is which.
  EXPECT_NE(html.find(">estimated step (balanced)<"), std::string::npos);
  EXPECT_NE(html.find(">simulated step (zipf:1.2)<"), std::string::npos);
}

TEST(ReportPage, WithoutSearchOrValidationThoseSectionsAreAbsent) {
  ReportInput input;
  input.plan = small_plan();
  input.origin = "plan file p.json";
  const RenderedReport report = render_report(input);
  EXPECT_EQ(report.sections, (std::vector<std::string>{kCostSection, kMemorySection,
                                                       kTimelineSection, kTrafficSection}));
  EXPECT_EQ(report.html.find("id=\"search-space\""), std::string::npos);
  EXPECT_NE(report.html.find(">simulated step<"), std::string::npos); // balanced: no qualifier
}

TEST(ReportPage, TimelineDrawsOneLanePerPipelineStage) {
  ReportInput input;
  input.plan = small_plan();
  const std::string html = render_report(input).html;
  EXPECT_NE(html.find(">stage 0 (rank 0)</text>"), std::string::npos);
  EXPECT_NE(html.find(">stage 1 (rank 8)</text>"), std::string::npos);
  EXPECT_EQ(html.find(">stage 2 ("), std::string::npos);
}

} // namespace
} // namespace foldplan::report
