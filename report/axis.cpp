#include "report/axis.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace foldplan::report {
namespace {

constexpr const char* kGrid = "#e6e6e6";
constexpr const char* kAxis = "#888";
constexpr double kTickFont = 11;

// The smallest of 1, 2, 2.5, 5 (times a power of ten) at least `rough`.
double nice_step(double rough) {
  const double magnitude = std::pow(10.0, std::floor(std::log10(rough)));
  for (const double factor : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (factor * magnitude >= rough * (1 - 1e-9))
      return factor * magnitude;
  }
  return 10 * magnitude;
}

} // namespace

std::vector<double> nice_ticks(double low, double high, int max_ticks) {
  if (high < low)
    std::swap(low, high);
  if (high == low) {
    low -= 0.5;
    high += 0.5;
  }
  const int intervals = std::max(1, max_ticks - 1);
  const double step = nice_step((high - low) / intervals);
  const double first = std::floor(low / step + 1e-9) * step;
  const double last = std::ceil(high / step - 1e-9) * step;
  std::vector<double> ticks;
  const auto count = static_cast<long>(std::llround((last - first) / step));
  for (long i = 0; i <= count; ++i) {
    const double tick = first + static_cast<double>(i) * step;
    ticks.push_back(std::abs(tick) < step * 1e-9 ? 0.0 : tick);
  }
  return ticks;
}

std::string tick_label(double value) {
  std::string text = fmt::format("{:.6g}", value);
  return text == "-0" ? "0" : text;
}

double LinearScale::operator()(double value) const {
  const double span = domain_high - domain_low;
  const double fraction = span == 0 ? 0 : (value - domain_low) / span;
  return range_low + fraction * (range_high - range_low);
}

void draw_x_axis(Svg& svg, const PlotArea& area, const LinearScale& scale,
                 const std::vector<double>& ticks, const std::string& label) {
  for (const double tick : ticks) {
    const double x = scale(tick);
    svg.line(x, area.top, x, area.bottom(), kGrid);
    svg.line(x, area.bottom(), x, area.bottom() + 4, kAxis);
    svg.text(x, area.bottom() + 17, tick_label(tick), {.size_px = kTickFont, .anchor = "middle"});
  }
  svg.line(area.left, area.bottom(), area.right(), area.bottom(), kAxis);
  svg.text(area.left + area.width / 2, area.bottom() + 36, label,
           {.size_px = 12, .anchor = "middle", .fill = "#444"});
}

void draw_y_axis(Svg& svg, const PlotArea& area, const LinearScale& scale,
                 const std::vector<double>& ticks, const std::string& label) {
  for (const double tick : ticks) {
    const double y = scale(tick);
    svg.line(area.left, y, area.right(), y, kGrid);
    svg.line(area.left - 4, y, area.left, y, kAxis);
    svg.text(area.left - 7, y, tick_label(tick),
             {.size_px = kTickFont, .anchor = "end", .baseline = "middle"});
  }
  svg.line(area.left, area.top, area.left, area.bottom(), kAxis);
  const double x = area.left - 48;
  const double y = area.top + area.height / 2;
  svg.text(x, y, label, {.size_px = 12, .anchor = "middle", .fill = "#444", .rotate_deg = -90});
}

} // namespace foldplan::report
