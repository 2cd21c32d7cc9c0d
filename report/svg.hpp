// SVG primitives for the report's charts: an SVG document built element by element, every piece
// of text escaped, numbers written with fixed precision so pages are reproducible byte for byte.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace foldplan::report {

// Escapes the five XML/HTML special characters; safe in element text and quoted attributes.
std::string escape_xml(std::string_view text);

// A coordinate or length as SVG gets it: at most two decimals, no trailing zeros ("12.5", "3").
std::string svg_number(double value);

struct TextStyle {
  double size_px = 12;
  std::string anchor = "start"; // start, middle, end
  std::string fill = "#333";
  bool bold = false;
  double rotate_deg = 0;         // about (x, y)
  std::string baseline = "auto"; // dominant-baseline: auto, middle, hanging
};

class Svg {
public:
  // `label` is the chart's accessible name (aria-label).
  Svg(double width, double height, std::string_view label);

  double width() const { return width_; }
  double height() const { return height_; }

  // `tooltip` (optional) shows on hover as the element's <title>.
  void rect(double x, double y, double width, double height, std::string_view fill,
            std::string_view tooltip = {}, std::string_view stroke = {});
  void line(double x1, double y1, double x2, double y2, std::string_view stroke,
            double stroke_width = 1, std::string_view dash = {});
  void circle(double cx, double cy, double radius, std::string_view fill,
              std::string_view tooltip = {}, std::string_view stroke = {}, double stroke_width = 1);
  void polyline(const std::vector<std::pair<double, double>>& points, std::string_view stroke,
                double stroke_width = 1.5, std::string_view dash = {});
  void text(double x, double y, std::string_view content, const TextStyle& style = {});

  // The finished <svg> element.
  std::string str() const;

private:
  void element(std::string_view tag, const std::string& attributes, std::string_view tooltip);

  double width_, height_;
  std::string label_;
  std::string body_;
};

} // namespace foldplan::report
