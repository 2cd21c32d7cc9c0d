#include "report/search_space_chart.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/units.hpp"
#include "report/axis.hpp"
#include "report/palette.hpp"
#include "report/time_unit.hpp"

namespace foldplan::report {

std::string point_label(const SearchPoint& point) {
  const ParallelConfig& c = point.parallel;
  return fmt::format("TP{} CP{} PP{} VPP{} DP{} | ETP{} EP{} EDP{}, mbs {}, recompute {}", c.tp,
                     c.cp, c.pp, c.vpp, c.dp, c.etp, c.ep, c.edp, point.micro_batch_size,
                     to_string(point.recompute));
}

std::string render_search_space_chart(const SearchSpaceChart& chart) {
  constexpr double kWidth = 1076, kHeight = 440;
  const PlotArea area{
      .left = 80, .top = 34, .width = kWidth - 80 - 70, .height = kHeight - 34 - 56};
  Svg svg(kWidth, kHeight, "search space: step time against memory per GPU");

  double max_time = 0, max_memory = chart.gpu_memory_bytes;
  bool any = false;
  for (const SearchSpaceSeries& series : chart.series) {
    for (const auto* points : {&series.sample, &series.front}) {
      for (const SearchPoint& point : *points) {
        max_time = std::max(max_time, point.step_time_s);
        max_memory = std::max(max_memory, point.peak_memory_bytes);
        any = true;
      }
    }
  }
  if (!any) {
    svg.text(kWidth / 2, kHeight / 2, "no plan of the space is valid and fits",
             {.size_px = 14, .anchor = "middle"});
    return svg.str();
  }
  const TimeUnit unit = time_unit_for(max_time);
  const std::vector<double> x_ticks = nice_ticks(0, max_memory / units::kGiga, 8);
  const std::vector<double> y_ticks = nice_ticks(0, max_time * unit.per_second, 6);
  const LinearScale x{.domain_low = x_ticks.front(),
                      .domain_high = x_ticks.back(),
                      .range_low = area.left,
                      .range_high = area.right()};
  const LinearScale y{.domain_low = y_ticks.front(),
                      .domain_high = y_ticks.back(),
                      .range_low = area.bottom(),
                      .range_high = area.top};
  draw_x_axis(svg, area, x, x_ticks, "peak memory per GPU (GB)");
  draw_y_axis(svg, area, y, y_ticks, fmt::format("step time ({})", unit.symbol));
  const auto px = [&](const SearchPoint& p) { return x(p.peak_memory_bytes / units::kGiga); };
  const auto py = [&](const SearchPoint& p) { return y(p.step_time_s * unit.per_second); };

  if (chart.gpu_memory_bytes > 0) {
    const double capacity = x(chart.gpu_memory_bytes / units::kGiga);
    svg.line(capacity, area.top, capacity, area.bottom(), kCapacityColour, 1.5, "6 4");
    svg.text(capacity - 4, area.top + 12,
             fmt::format("GPU memory {}", units::format_bytes(chart.gpu_memory_bytes)),
             {.size_px = 11, .anchor = "end", .fill = std::string(kCapacityColour)});
  }
  for (const SearchSpaceSeries& series : chart.series) {
    for (const SearchPoint& point : series.sample)
      svg.circle(px(point), py(point), 2.2, series.colour + "55");
  }
  for (const SearchSpaceSeries& series : chart.series) {
    // The front as a staircase: what the fastest plan within a memory budget costs.
    std::vector<std::pair<double, double>> stairs;
    for (const SearchPoint& point : series.front) {
      if (!stairs.empty())
        stairs.emplace_back(stairs.back().first, py(point));
      stairs.emplace_back(px(point), py(point));
    }
    svg.polyline(stairs, series.colour, 1.5);
    for (const SearchPoint& point : series.front) {
      svg.circle(px(point), py(point), 3.8, series.colour,
                 fmt::format("{} Pareto point: {} step, {} per GPU\n{}", series.name,
                             format_time_in(point.step_time_s, unit),
                             units::format_bytes(point.peak_memory_bytes), point_label(point)),
                 "white", 1);
    }
  }
  if (chart.chosen) {
    const SearchPoint& chosen = *chart.chosen;
    svg.circle(px(chosen), py(chosen), 8, "none",
               fmt::format("chosen plan: {} step, {} per GPU\n{}",
                           format_time_in(chosen.step_time_s, unit),
                           units::format_bytes(chosen.peak_memory_bytes), point_label(chosen)),
               std::string(kChosenColour), 2.5);
    svg.text(px(chosen) + 11, py(chosen) - 9, "chosen",
             {.size_px = 12, .fill = std::string(kChosenColour), .bold = true});
  }
  // Legend, above the plot.
  double legend_x = area.left;
  for (const SearchSpaceSeries& series : chart.series) {
    svg.circle(legend_x + 5, 16, 4, series.colour);
    const std::string text = fmt::format("{} ({} sampled, {} on the Pareto front)", series.name,
                                         series.sample.size(), series.front.size());
    svg.text(legend_x + 14, 16, text, {.size_px = 12, .baseline = "middle"});
    legend_x += 30 + 6.6 * static_cast<double>(text.size());
  }
  if (chart.chosen) {
    svg.circle(legend_x + 5, 16, 5, "none", {}, std::string(kChosenColour), 2);
    svg.text(legend_x + 14, 16, "chosen plan", {.size_px = 12, .baseline = "middle"});
  }
  return svg.str();
}

} // namespace foldplan::report
