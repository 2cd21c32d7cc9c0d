#include "report/svg.hpp"

#include <cmath>

#include <fmt/format.h>

namespace foldplan::report {

std::string escape_xml(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (const char c : text) {
    switch (c) {
    case '&':
      escaped += "&amp;";
      break;
    case '<':
      escaped += "&lt;";
      break;
    case '>':
      escaped += "&gt;";
      break;
    case '"':
      escaped += "&quot;";
      break;
    case '\'':
      escaped += "&#39;";
      break;
    default:
      escaped += c;
    }
  }
  return escaped;
}

std::string svg_number(double value) {
  if (!std::isfinite(value))
    return "0";
  std::string text = fmt::format("{:.2f}", value);
  while (text.back() == '0')
    text.pop_back();
  if (text.back() == '.')
    text.pop_back();
  return text == "-0" ? "0" : text;
}

Svg::Svg(double width, double height, std::string_view label)
    : width_(width), height_(height), label_(label) {}

void Svg::element(std::string_view tag, const std::string& attributes, std::string_view tooltip) {
  if (tooltip.empty()) {
    body_ += fmt::format("<{} {}/>\n", tag, attributes);
  } else {
    body_ +=
        fmt::format("<{} {}><title>{}</title></{}>\n", tag, attributes, escape_xml(tooltip), tag);
  }
}

void Svg::rect(double x, double y, double width, double height, std::string_view fill,
               std::string_view tooltip, std::string_view stroke) {
  std::string attributes = fmt::format(
      R"(x="{}" y="{}" width="{}" height="{}" fill="{}")", svg_number(x), svg_number(y),
      svg_number(std::max(0.0, width)), svg_number(std::max(0.0, height)), escape_xml(fill));
  if (!stroke.empty())
    attributes += fmt::format(R"( stroke="{}")", escape_xml(stroke));
  element("rect", attributes, tooltip);
}

void Svg::line(double x1, double y1, double x2, double y2, std::string_view stroke,
               double stroke_width, std::string_view dash) {
  std::string attributes =
      fmt::format(R"(x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" )"
                  R"(stroke-width="{}")",
                  svg_number(x1), svg_number(y1), svg_number(x2), svg_number(y2),
                  escape_xml(stroke), svg_number(stroke_width));
  if (!dash.empty())
    attributes += fmt::format(R"( stroke-dasharray="{}")", escape_xml(dash));
  element("line", attributes, {});
}

void Svg::circle(double cx, double cy, double radius, std::string_view fill,
                 std::string_view tooltip, std::string_view stroke, double stroke_width) {
  std::string attributes = fmt::format(R"(cx="{}" cy="{}" r="{}" fill="{}")", svg_number(cx),
                                       svg_number(cy), svg_number(radius), escape_xml(fill));
  if (!stroke.empty()) {
    attributes += fmt::format(R"( stroke="{}" stroke-width="{}")", escape_xml(stroke),
                              svg_number(stroke_width));
  }
  element("circle", attributes, tooltip);
}

void Svg::polyline(const std::vector<std::pair<double, double>>& points, std::string_view stroke,
                   double stroke_width, std::string_view dash) {
  std::string coordinates;
  for (const auto& [x, y] : points)
    coordinates +=
        fmt::format("{}{},{}", coordinates.empty() ? "" : " ", svg_number(x), svg_number(y));
  std::string attributes = fmt::format(R"(points="{}" fill="none" stroke="{}" stroke-width="{}")",
                                       coordinates, escape_xml(stroke), svg_number(stroke_width));
  if (!dash.empty())
    attributes += fmt::format(R"( stroke-dasharray="{}")", escape_xml(dash));
  element("polyline", attributes, {});
}

void Svg::text(double x, double y, std::string_view content, const TextStyle& style) {
  std::string attributes = fmt::format(R"(x="{}" y="{}" font-size="{}" text-anchor="{}" fill="{}")",
                                       svg_number(x), svg_number(y), svg_number(style.size_px),
                                       escape_xml(style.anchor), escape_xml(style.fill));
  if (style.bold)
    attributes += R"( font-weight="600")";
  if (style.baseline != "auto")
    attributes += fmt::format(R"( dominant-baseline="{}")", escape_xml(style.baseline));
  if (style.rotate_deg != 0) {
    attributes += fmt::format(R"svg( transform="rotate({} {} {})")svg",
                              svg_number(style.rotate_deg), svg_number(x), svg_number(y));
  }
  body_ += fmt::format("<text {}>{}</text>\n", attributes, escape_xml(content));
}

std::string Svg::str() const {
  return fmt::format(R"(<svg width="{}" height="{}" )"
                     R"(viewBox="0 0 {} {}" role="img" aria-label="{}">)"
                     "\n{}</svg>\n",
                     svg_number(width_), svg_number(height_), svg_number(width_),
                     svg_number(height_), escape_xml(label_), body_);
}

} // namespace foldplan::report
