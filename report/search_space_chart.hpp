// The search space as a scatter of step time against memory per GPU: a sample of every timed
// point, the Pareto front of each series (folded, pre-folding), the GPU's capacity, the chosen
// plan.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "planner/search_points.hpp"

namespace foldplan::report {

struct SearchSpaceSeries {
  std::string name; // "MoE Parallel Folding"
  std::string colour;
  std::vector<SearchPoint> sample;
  std::vector<SearchPoint> front; // sorted by step time
};

struct SearchSpaceChart {
  std::vector<SearchSpaceSeries> series;
  std::optional<SearchPoint> chosen;
  double gpu_memory_bytes = 0;
};

// A short description of a point's configuration for tooltips: "TP2 CP1 PP4 VPP1 | ETP1 EP8 …".
std::string point_label(const SearchPoint& point);

std::string render_search_space_chart(const SearchSpaceChart& chart);

} // namespace foldplan::report
