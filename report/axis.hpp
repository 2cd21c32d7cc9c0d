// Chart axes: "nice" tick values (1, 2, 2.5 or 5 times a power of ten) that cover a data range,
// the linear map from data to pixels, and the drawing of an axis with its ticks, grid and label.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "report/svg.hpp"

namespace foldplan::report {

// Ticks from a multiple of the step at or below `low` to one at or above `high`, at most about
// `max_ticks` of them; the chart's domain is [front, back]. low == high widens to a unit range.
std::vector<double> nice_ticks(double low, double high, int max_ticks = 6);

// The tick label: the value without noise digits ("0.25", "40", "1.5").
std::string tick_label(double value);

struct LinearScale {
  double domain_low = 0, domain_high = 1;
  double range_low = 0, range_high = 1; // pixels; range_high < range_low for a y axis

  double operator()(double value) const;
};

// Plot area of a chart in pixels.
struct PlotArea {
  double left = 0, top = 0, width = 0, height = 0;
  double right() const { return left + width; }
  double bottom() const { return top + height; }
};

// Ticks and grid lines under the plot, then the axis line and label ("step time (ms)").
void draw_x_axis(Svg& svg, const PlotArea& area, const LinearScale& scale,
                 const std::vector<double>& ticks, const std::string& label);
void draw_y_axis(Svg& svg, const PlotArea& area, const LinearScale& scale,
                 const std::vector<double>& ticks, const std::string& label);

} // namespace foldplan::report
