#include "report/traffic_heatmap.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/units.hpp"
#include "report/svg.hpp"

namespace foldplan::report {

std::string heat_colour(double fraction) {
  fraction = std::clamp(std::isfinite(fraction) ? fraction : 0.0, 0.0, 1.0);
  // Linear from #fff5f0 to #a50f15 (ColorBrewer Reds' ends).
  const auto channel = [&](int low, int high) {
    return static_cast<int>(std::lround(low + fraction * (high - low)));
  };
  return fmt::format("#{:02x}{:02x}{:02x}", channel(0xff, 0xa5), channel(0xf5, 0x0f),
                     channel(0xf0, 0x15));
}

std::string render_traffic_heatmap(const TrafficMatrix& matrix) {
  const double cell =
      std::clamp(560.0 / static_cast<double>(std::max<std::int64_t>(1, matrix.size)), 6.0, 48.0);
  const double left = 120, top = 60;
  const double grid = cell * static_cast<double>(matrix.size);
  Svg svg(std::max(700.0, left + grid + 280), top + grid + 30, "MoE dispatcher traffic matrix");
  // The colour spans the cells' own range: under any routing most cells are alike, and what
  // matters is which stand out.
  double min_bytes = matrix.bytes.empty() ? 0 : matrix.bytes.front(), max_bytes = 0;
  for (const double bytes : matrix.bytes) {
    min_bytes = std::min(min_bytes, bytes);
    max_bytes = std::max(max_bytes, bytes);
  }
  const auto shade = [&](double bytes) {
    return max_bytes > min_bytes ? (bytes - min_bytes) / (max_bytes - min_bytes) : 0.5;
  };
  const bool labels = cell >= 40;
  const bool ticks_every = matrix.size <= 16;
  for (std::int64_t source = 0; source < matrix.size; ++source) {
    double sent = 0;
    for (std::int64_t destination = 0; destination < matrix.size; ++destination) {
      const double bytes = matrix.at(source, destination);
      sent += bytes;
      const double fraction = shade(bytes);
      const double x = left + cell * static_cast<double>(destination);
      const double y = top + cell * static_cast<double>(source);
      svg.rect(x, y, cell - 1, cell - 1, heat_colour(fraction),
               fmt::format("EP rank {} → EP rank {}: {}", source, destination,
                           units::format_bytes(bytes)));
      if (labels) {
        svg.text(x + cell / 2, y + cell / 2, units::format_bytes(bytes),
                 {.size_px = 9,
                  .anchor = "middle",
                  .fill = fraction > 0.55 ? "white" : "#333",
                  .baseline = "middle"});
      }
    }
    if (ticks_every || source % 8 == 0) {
      svg.text(left - 6, top + cell * (static_cast<double>(source) + 0.5), std::to_string(source),
               {.size_px = 10, .anchor = "end", .baseline = "middle"});
    }
    svg.text(left + grid + 8, top + cell * (static_cast<double>(source) + 0.5),
             units::format_bytes(sent), {.size_px = 10, .fill = "#555", .baseline = "middle"});
  }
  for (std::int64_t destination = 0; destination < matrix.size; ++destination) {
    double received = 0;
    for (std::int64_t source = 0; source < matrix.size; ++source)
      received += matrix.at(source, destination);
    const double x = left + cell * (static_cast<double>(destination) + 0.5);
    if (ticks_every || destination % 8 == 0)
      svg.text(x, top - 6, std::to_string(destination), {.size_px = 10, .anchor = "middle"});
    if (ticks_every) {
      svg.text(x, top + grid + 14, units::format_bytes(received),
               {.size_px = 10, .anchor = "middle", .fill = "#555"});
    }
  }
  svg.text(left + grid / 2, top - 24, "destination EP rank (receives)",
           {.size_px = 12, .anchor = "middle", .fill = "#444"});
  svg.text(left - 40, top + grid / 2, "source EP rank (sends)",
           {.size_px = 12, .anchor = "middle", .fill = "#444", .rotate_deg = -90});
  svg.text(left + grid + 8, top - 6, "sent", {.size_px = 10, .fill = "#555"});
  if (ticks_every)
    svg.text(left - 6, top + grid + 14, "received",
             {.size_px = 10, .anchor = "end", .fill = "#555"});
  // Colour scale.
  const double scale_x = left + grid + 90, scale_width = 140;
  for (int i = 0; i < 20; ++i) {
    svg.rect(scale_x + scale_width * i / 20.0, top, scale_width / 20.0 + 0.5, 12,
             heat_colour(i / 19.0));
  }
  svg.text(scale_x, top + 26, units::format_bytes(min_bytes), {.size_px = 10});
  svg.text(scale_x + scale_width, top + 26, units::format_bytes(max_bytes),
           {.size_px = 10, .anchor = "end"});
  svg.text(scale_x, top - 6, "bytes per cell", {.size_px = 10, .fill = "#555"});
  return svg.str();
}

} // namespace foldplan::report
