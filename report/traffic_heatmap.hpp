// The MoE dispatcher's traffic as a heat map: bytes each EP rank sends to each EP rank in one
// all-to-all, under the chosen routing, with every row's and column's total at its end (the hot
// receiver is the straggler the whole EP group waits for).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace foldplan::report {

struct TrafficMatrix {
  std::int64_t size = 0;
  std::vector<double> bytes; // [source · size + destination]
  std::string description;   // what one cell is, for the text beside the chart

  double at(std::int64_t source, std::int64_t destination) const {
    return bytes[static_cast<std::size_t>(source * size + destination)];
  }
};

// A colour from white to dark red for `fraction` in [0, 1] (clamped). The chart maps its
// smallest cell to 0 and its largest to 1.
std::string heat_colour(double fraction);

std::string render_traffic_heatmap(const TrafficMatrix& matrix);

} // namespace foldplan::report
