// The charts draw what they are given: points where the scales put them, every label with its
// unit, merged timeline boxes, heat colours at the ends of the scale.
#include <gtest/gtest.h>

#include "report/bar_chart.hpp"
#include "report/memory_chart.hpp"
#include "report/search_space_chart.hpp"
#include "report/timeline_chart.hpp"
#include "report/traffic_heatmap.hpp"

namespace foldplan::report {
namespace {

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t found = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++found;
  return found;
}

SearchPoint point(double step_time_s, double memory_gb) {
  SearchPoint result;
  result.step_time_s = step_time_s;
  result.peak_memory_bytes = memory_gb * 1e9;
  return result;
}

TEST(SearchSpaceChart, DrawsSampleFrontCapacityAndChosenWithUnits) {
  SearchSpaceChart chart{.series = {{.name = "folded",
                                     .colour = "#4e79a7",
                                     .sample = {point(1.5, 40), point(1.2, 70), point(0.9, 75)},
                                     .front = {point(0.9, 75), point(1.2, 30)}}},
                         .chosen = point(0.9, 75),
                         .gpu_memory_bytes = 80e9};
  const std::string svg = render_search_space_chart(chart);
  EXPECT_NE(svg.find(">peak memory per GPU (GB)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">step time (ms)</text>"), std::string::npos); // steps under 2 s in ms
  EXPECT_NE(svg.find("GPU memory 80.0 GB"), std::string::npos);
  EXPECT_NE(svg.find(">chosen</text>"), std::string::npos);
  EXPECT_EQ(count(svg, R"(fill="#4e79a755")"), 3u); // the sampled dots, translucent
  EXPECT_NE(svg.find("folded Pareto point: 900.0 ms step, 75.0 GB per GPU"), std::string::npos);
  EXPECT_NE(svg.find("folded (3 sampled, 2 on the Pareto front)"), std::string::npos);
  // x ticks 0..80 GB; the plot spans x 80..1006, so the capacity line (80 GB) is its right edge.
  EXPECT_NE(svg.find(R"(<line x1="1006" y1="34" x2="1006" y2="384" stroke="#e15759")"),
            std::string::npos);
}

TEST(SearchSpaceChart, EmptySpaceSaysSo) {
  SearchSpaceChart chart;
  chart.series.push_back(
      SearchSpaceSeries{.name = "folded", .colour = "#000", .sample = {}, .front = {}});
  const std::string svg = render_search_space_chart(chart);
  EXPECT_NE(svg.find("no plan of the space is valid and fits"), std::string::npos);
}

TEST(BarChart, OneBarPerValueWithItsAnnotation) {
  const std::string svg =
      render_bar_chart({.title = "t",
                        .axis_label = "time per step (ms)",
                        .groups = {{.label = "compute", .bars = {{"", 300, "#111", "300.0 ms"}}},
                                   {.label = "bubble", .bars = {{"", 100, "#222", "100.0 ms"}}}},
                        .legend = {}});
  EXPECT_NE(svg.find(">time per step (ms)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">300.0 ms</text>"), std::string::npos);
  EXPECT_NE(svg.find("<title>compute: 300.0 ms</title>"), std::string::npos);
  // Ticks 0..300 over the 716 px plot: the 100 ms bar is a third as long as the 300 ms one.
  EXPECT_NE(svg.find(R"(width="716" height="18" fill="#111")"), std::string::npos);
  EXPECT_NE(svg.find(R"(width="238.67" height="18" fill="#222")"), std::string::npos);
}

TEST(MemoryChart, StacksTermsThatSumToTheTotal) {
  MemoryBreakdown stage;
  stage.pp_rank = 1;
  stage.weights_bytes = 10e9;
  stage.gradients_bytes = 20e9;
  stage.optimizer_bytes = 5e9;
  stage.activations_bytes = 25e9;
  stage.other_bytes = 0;
  double sum = 0;
  for (const auto& [term, bytes] : memory_stack(stage))
    sum += bytes;
  EXPECT_DOUBLE_EQ(sum, stage.total_bytes());
  const std::string svg = render_memory_chart({stage}, 80e9);
  EXPECT_NE(svg.find(">stage 1</text>"), std::string::npos);
  EXPECT_NE(svg.find("60.0 GB (75%)"), std::string::npos);
  EXPECT_NE(svg.find("capacity 80.0 GB"), std::string::npos);
  EXPECT_NE(svg.find(">memory per GPU (GB)</text>"), std::string::npos);
}

TEST(Timeline, MergesOpsOfOneClassLessThanAPixelApart) {
  std::vector<Op> ops(4);
  ops[0] = {.id = 0, .name = "a", .kind = OpKind::gemm, .shape = GemmShape{}};
  ops[1] = {.id = 1, .name = "b", .kind = OpKind::gemm, .shape = GemmShape{}};
  ops[2] = {.id = 2, .name = "c", .kind = OpKind::attention, .shape = AttentionOpShape{}};
  ops[3] = {.id = 3, .name = "d", .kind = OpKind::attention, .shape = AttentionOpShape{}};
  // At 1000 px/s: a 0..10 px, b 10.5..20 px (merges: gap 0.5 px), c 20..30, d 40..50 (gap 10).
  const std::vector<OpInterval> timeline = {
      {0, 0.010}, {0.0105, 0.020}, {0.020, 0.030}, {0.040, 0.050}};
  const std::vector<TimelineBox> boxes = merge_into_boxes(ops, timeline, {0, 1, 2, 3}, 1000);
  ASSERT_EQ(boxes.size(), 3u);
  EXPECT_EQ(boxes[0].first_op, "a");
  EXPECT_EQ(boxes[0].ops, 2);
  EXPECT_DOUBLE_EQ(boxes[0].end_px, 20);
  EXPECT_EQ(boxes[1].ops, 1);
  EXPECT_EQ(boxes[2].first_op, "d");
  EXPECT_DOUBLE_EQ(boxes[2].start_s, 0.040);
}

TEST(TrafficHeatmap, ColoursRunFromWhiteToDarkRed) {
  EXPECT_EQ(heat_colour(0), "#fff5f0");
  EXPECT_EQ(heat_colour(1), "#a50f15");
  EXPECT_EQ(heat_colour(7), "#a50f15");
  EXPECT_EQ(heat_colour(-1), "#fff5f0");
}

TEST(TrafficHeatmap, EveryCellWithBytesAndTotalsShadedOverTheCellsRange) {
  const TrafficMatrix matrix{.size = 2, .bytes = {2e6, 5e6, 3e6, 2e6}, .description = "one a2a"};
  const std::string svg = render_traffic_heatmap(matrix);
  EXPECT_NE(svg.find("<title>EP rank 0 → EP rank 1: 5.0 MB</title>"), std::string::npos);
  // The largest cell is the darkest, the smallest the lightest, 3 MB a third of the way.
  EXPECT_NE(svg.find(R"(fill="#a50f15"><title>EP rank 0 → EP rank 1)"), std::string::npos);
  EXPECT_NE(svg.find(R"(fill="#fff5f0"><title>EP rank 0 → EP rank 0)"), std::string::npos);
  EXPECT_NE(svg.find(heat_colour(1.0 / 3) + R"("><title>EP rank 1 → EP rank 0)"),
            std::string::npos);
  EXPECT_NE(svg.find(">destination EP rank (receives)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">7.0 MB</text>"), std::string::npos); // rank 0 sends 2 + 5 MB
  EXPECT_EQ(count(svg, "<title>EP rank"), 4u);
}

} // namespace
} // namespace foldplan::report
