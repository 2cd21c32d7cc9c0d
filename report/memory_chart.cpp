#include "report/memory_chart.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/units.hpp"
#include "report/axis.hpp"
#include "report/palette.hpp"
#include "report/svg.hpp"

namespace foldplan::report {

std::vector<std::pair<std::string, double>> memory_stack(const MemoryBreakdown& memory) {
  return {{"weights", memory.weights_bytes},
          {"gradients", memory.gradients_bytes},
          {"optimizer", memory.optimizer_bytes},
          {"activations", memory.activations_bytes},
          {"other", memory.other_bytes}};
}

std::string render_memory_chart(const std::vector<MemoryBreakdown>& stages,
                                double gpu_memory_bytes) {
  constexpr double kBarHeight = 20, kBarGap = 8, kWidth = 1076;
  const PlotArea area{.left = 110,
                      .top = 34,
                      .width = kWidth - 110 - 130,
                      .height = static_cast<double>(stages.size()) * (kBarHeight + kBarGap) + 4};
  Svg svg(kWidth, area.bottom() + 46, "memory per GPU of each pipeline stage");
  double max_bytes = gpu_memory_bytes;
  for (const MemoryBreakdown& stage : stages)
    max_bytes = std::max(max_bytes, stage.total_bytes());
  const std::vector<double> ticks = nice_ticks(0, max_bytes / units::kGiga, 8);
  const LinearScale x{.domain_low = 0,
                      .domain_high = ticks.back(),
                      .range_low = area.left,
                      .range_high = area.right()};
  draw_x_axis(svg, area, x, ticks, "memory per GPU (GB)");
  double y = area.top + 4;
  for (const MemoryBreakdown& stage : stages) {
    svg.text(area.left - 10, y + kBarHeight / 2, fmt::format("stage {}", stage.pp_rank),
             {.size_px = 12, .anchor = "end", .baseline = "middle"});
    double offset = 0;
    for (const auto& [term, bytes] : memory_stack(stage)) {
      const double start = x(offset / units::kGiga);
      offset += bytes;
      svg.rect(start, y, x(offset / units::kGiga) - start, kBarHeight,
               std::string(term_colour(term)),
               fmt::format("stage {} {}: {}", stage.pp_rank, term, units::format_bytes(bytes)));
    }
    const double total = stage.total_bytes();
    svg.text(x(total / units::kGiga) + 6, y + kBarHeight / 2,
             fmt::format("{} ({:.0f}%)", units::format_bytes(total),
                         gpu_memory_bytes > 0 ? 100 * total / gpu_memory_bytes : 0.0),
             {.size_px = 11, .fill = "#444", .baseline = "middle"});
    y += kBarHeight + kBarGap;
  }
  if (gpu_memory_bytes > 0) {
    const double capacity = x(gpu_memory_bytes / units::kGiga);
    svg.line(capacity, area.top - 4, capacity, area.bottom(), std::string(kCapacityColour), 1.5,
             "6 4");
    svg.text(capacity, area.top - 8,
             fmt::format("capacity {}", units::format_bytes(gpu_memory_bytes)),
             {.size_px = 11, .anchor = "middle", .fill = std::string(kCapacityColour)});
  }
  double legend_x = area.left;
  const MemoryBreakdown none;
  for (const auto& [term, bytes] : memory_stack(none)) {
    svg.rect(legend_x, 6, 12, 12, std::string(term_colour(term)));
    svg.text(legend_x + 17, 12, term, {.size_px = 12, .baseline = "middle"});
    legend_x += 30 + 7 * static_cast<double>(term.size());
  }
  return svg.str();
}

} // namespace foldplan::report
