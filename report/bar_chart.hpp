// Horizontal bar charts: one bar per named value (the cost breakdown), or groups of bars side by
// side (predicted beside measured), each bar labelled with its value and unit at its end.
#pragma once

#include <string>
#include <vector>

namespace foldplan::report {

struct Bar {
  std::string label; // on the left of the bar
  double value = 0;  // in the axis' unit
  std::string colour;
  std::string annotation; // at the bar's end ("412.3 ms · 38.0%")
};

// One row per group; a group of one bar is a plain bar chart. `axis_label` carries the unit.
struct BarGroup {
  std::string label;
  std::vector<Bar> bars;
};

struct BarChart {
  std::string title; // the accessible name
  std::string axis_label;
  std::vector<BarGroup> groups;
  std::vector<std::pair<std::string, std::string>> legend; // (name, colour); empty: none
};

std::string render_bar_chart(const BarChart& chart);

} // namespace foldplan::report
