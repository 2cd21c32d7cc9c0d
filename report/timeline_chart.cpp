#include "report/timeline_chart.hpp"

#include <algorithm>
#include <array>
#include <map>

#include <fmt/format.h>

#include "report/axis.hpp"
#include "report/palette.hpp"
#include "report/svg.hpp"
#include "report/time_unit.hpp"

namespace foldplan::report {
namespace {

constexpr double kMergeGapPx = 0.75;
constexpr std::array kCommunicationStreams = {Stream::tp_comm, Stream::cp_comm, Stream::ep_comm,
                                              Stream::pp_comm, Stream::dp_comm};

} // namespace

std::vector<TimelineBox> merge_into_boxes(const std::vector<Op>& ops,
                                          const std::vector<OpInterval>& timeline,
                                          const std::vector<std::size_t>& indices,
                                          double px_per_s) {
  std::vector<TimelineBox> boxes;
  for (const std::size_t index : indices) {
    const Op& op = ops[index];
    const OpInterval& interval = timeline[index];
    const double start = interval.start_s * px_per_s, end = interval.end_s * px_per_s;
    const std::string colour(op_colour(op));
    if (!boxes.empty() && boxes.back().colour == colour &&
        start - boxes.back().end_px < kMergeGapPx) {
      TimelineBox& box = boxes.back();
      box.end_px = std::max(box.end_px, end);
      box.end_s = std::max(box.end_s, interval.end_s);
      ++box.ops;
      continue;
    }
    boxes.push_back({.start_px = start,
                     .end_px = end,
                     .colour = colour,
                     .first_op = op.name,
                     .ops = 1,
                     .start_s = interval.start_s,
                     .end_s = interval.end_s});
  }
  return boxes;
}

std::string render_timeline_chart(const StepProgram& program, const SimulationResult& simulated,
                                  const std::vector<TimelineLane>& lanes) {
  constexpr double kWidth = 1076, kComputeHeight = 20, kCommHeight = 7, kLaneGap = 12;
  const TimeUnit unit = time_unit_for(simulated.step_time_s);
  // Which streams each lane draws: compute, then the communication streams its rank uses.
  std::vector<std::vector<Stream>> lane_streams;
  double lanes_height = 0;
  for (const TimelineLane& lane : lanes) {
    const RankProgram* rank_program = program_of_rank(program, lane.rank);
    std::vector<Stream> streams = {Stream::compute};
    for (const Stream stream : kCommunicationStreams) {
      if (rank_program != nullptr && std::any_of(rank_program->ops.begin(), rank_program->ops.end(),
                                                 [&](const Op& op) { return op.stream == stream; }))
        streams.push_back(stream);
    }
    lanes_height +=
        kComputeHeight + static_cast<double>(streams.size() - 1) * (kCommHeight + 1) + kLaneGap;
    lane_streams.push_back(std::move(streams));
  }
  const PlotArea area{
      .left = 150, .top = 34, .width = kWidth - 150 - 20, .height = lanes_height + 4};
  Svg svg(kWidth, area.bottom() + 46, "pipeline timeline of one step");
  const std::vector<double> ticks = nice_ticks(0, simulated.step_time_s * unit.per_second, 10);
  const LinearScale x{.domain_low = 0,
                      .domain_high = ticks.back(),
                      .range_low = area.left,
                      .range_high = area.right()};
  draw_x_axis(svg, area, x, ticks, fmt::format("time in the step ({})", unit.symbol));
  const double px_per_s = (x(1) - x(0)) * unit.per_second;

  std::map<std::string, std::string> legend; // class -> colour, in name order
  double y = area.top + 6;
  for (std::size_t l = 0; l < lanes.size(); ++l) {
    const TimelineLane& lane = lanes[l];
    const RankProgram* rank_program = program_of_rank(program, lane.rank);
    const std::vector<OpInterval>& timeline =
        simulated.ranks[static_cast<std::size_t>(lane.rank)].timeline;
    svg.text(area.left - 10, y + kComputeHeight / 2, lane.label,
             {.size_px = 12, .anchor = "end", .baseline = "middle"});
    for (const Stream stream : lane_streams[l]) {
      const bool compute = stream == Stream::compute;
      const double height = compute ? kComputeHeight : kCommHeight;
      std::vector<std::size_t> indices;
      for (std::size_t i = 0; rank_program != nullptr && i < rank_program->ops.size(); ++i) {
        if (rank_program->ops[i].stream == stream) {
          indices.push_back(i);
          legend.emplace(op_class(rank_program->ops[i]), op_colour(rank_program->ops[i]));
        }
      }
      std::sort(indices.begin(), indices.end(), [&](std::size_t a, std::size_t b) {
        return timeline[a].start_s < timeline[b].start_s;
      });
      svg.rect(area.left, y, area.width, height, "#f6f6f6");
      if (!compute) {
        svg.text(area.left - 10, y + height / 2, std::string(stream_name(stream)),
                 {.size_px = 9, .anchor = "end", .fill = "#777", .baseline = "middle"});
      }
      for (const TimelineBox& box :
           merge_into_boxes(rank_program->ops, timeline, indices, px_per_s)) {
        const std::string tooltip =
            box.ops == 1
                ? fmt::format("{}: {} to {}", box.first_op, format_time_in(box.start_s, unit),
                              format_time_in(box.end_s, unit))
                : fmt::format("{} and {} more ops: {} to {}", box.first_op, box.ops - 1,
                              format_time_in(box.start_s, unit), format_time_in(box.end_s, unit));
        svg.rect(area.left + box.start_px, y, std::max(0.6, box.end_px - box.start_px), height,
                 box.colour, tooltip);
      }
      y += height + 1;
    }
    y += kLaneGap - 1;
  }
  double legend_x = area.left;
  for (const auto& [name, colour] : legend) {
    svg.rect(legend_x, 6, 12, 12, colour);
    svg.text(legend_x + 17, 12, name, {.size_px = 12, .baseline = "middle"});
    legend_x += 34 + 7.2 * static_cast<double>(name.size());
  }
  return svg.str();
}

} // namespace foldplan::report
