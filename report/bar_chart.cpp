#include "report/bar_chart.hpp"

#include <algorithm>

#include "report/axis.hpp"
#include "report/svg.hpp"

namespace foldplan::report {

std::string render_bar_chart(const BarChart& chart) {
  constexpr double kBarHeight = 18, kBarGap = 3, kGroupGap = 12, kLabelWidth = 190;
  constexpr double kWidth = 1076, kAnnotationWidth = 170;
  const double legend_height = chart.legend.empty() ? 0 : 24;
  double rows_height = 0;
  double max_value = 0;
  for (const BarGroup& group : chart.groups) {
    rows_height += static_cast<double>(group.bars.size()) * (kBarHeight + kBarGap) + kGroupGap;
    for (const Bar& bar : group.bars)
      max_value = std::max(max_value, bar.value);
  }
  const PlotArea area{.left = kLabelWidth,
                      .top = 10 + legend_height,
                      .width = kWidth - kLabelWidth - kAnnotationWidth,
                      .height = std::max(rows_height, 20.0)};
  Svg svg(kWidth, area.bottom() + 46, chart.title);
  const std::vector<double> ticks = nice_ticks(0, std::max(max_value, 1e-12), 7);
  const LinearScale x{.domain_low = 0,
                      .domain_high = ticks.back(),
                      .range_low = area.left,
                      .range_high = area.right()};
  draw_x_axis(svg, area, x, ticks, chart.axis_label);
  double y = area.top + kGroupGap / 2;
  for (const BarGroup& group : chart.groups) {
    const double group_height =
        static_cast<double>(group.bars.size()) * (kBarHeight + kBarGap) - kBarGap;
    svg.text(area.left - 10, y + group_height / 2, group.label,
             {.size_px = 12, .anchor = "end", .baseline = "middle"});
    for (const Bar& bar : group.bars) {
      svg.rect(area.left, y, x(bar.value) - area.left, kBarHeight, bar.colour,
               group.label + (bar.label.empty() ? "" : " — " + bar.label) + ": " + bar.annotation);
      svg.text(x(bar.value) + 6, y + kBarHeight / 2, bar.annotation,
               {.size_px = 11, .fill = "#444", .baseline = "middle"});
      y += kBarHeight + kBarGap;
    }
    y += kGroupGap - kBarGap;
  }
  double legend_x = area.left;
  for (const auto& [name, colour] : chart.legend) {
    svg.rect(legend_x, 6, 12, 12, colour);
    svg.text(legend_x + 17, 12, name, {.size_px = 12, .baseline = "middle"});
    legend_x += 30 + 7 * static_cast<double>(name.size());
  }
  return svg.str();
}

} // namespace foldplan::report
