#include "report/svg.hpp"

#include <gtest/gtest.h>

namespace foldplan::report {
namespace {

TEST(EscapeXml, EscapesTheFiveSpecialCharacters) {
  EXPECT_EQ(escape_xml(R"(<a href="x">'&'</a>)"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(escape_xml("TP2 | EP8 → 1.5 ms"), "TP2 | EP8 → 1.5 ms");
}

TEST(SvgNumber, TwoDecimalsWithoutTrailingZeros) {
  EXPECT_EQ(svg_number(12.5), "12.5");
  EXPECT_EQ(svg_number(3.0), "3");
  EXPECT_EQ(svg_number(0.125), "0.12");
  EXPECT_EQ(svg_number(-0.001), "0");
  EXPECT_EQ(svg_number(1.0 / 0.0), "0");
}

TEST(Svg, EscapesTextTooltipsAndAttributes) {
  Svg svg(100, 50, "a <chart>");
  svg.text(1, 2, "x < y & \"z\"");
  svg.rect(0, 0, 10, 5, "#fff", "tip <b>");
  svg.circle(3, 4, 2, "red\" onload=\"alert(1)");
  const std::string text = svg.str();
  EXPECT_NE(text.find(R"(aria-label="a &lt;chart&gt;")"), std::string::npos);
  EXPECT_NE(text.find("x &lt; y &amp; &quot;z&quot;</text>"), std::string::npos);
  EXPECT_NE(text.find("<title>tip &lt;b&gt;</title>"), std::string::npos);
  EXPECT_EQ(text.find("onload=\""), std::string::npos);
  EXPECT_NE(text.find(R"(<rect x="0" y="0" width="10" height="5" fill="#fff">)"),
            std::string::npos);
}

TEST(Svg, NegativeSizesDrawNothingRatherThanAnInvalidRect) {
  Svg svg(10, 10, "t");
  svg.rect(5, 5, -3, 2, "#000");
  EXPECT_NE(svg.str().find(R"(width="0")"), std::string::npos);
}

} // namespace
} // namespace foldplan::report
