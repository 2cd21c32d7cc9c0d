#include "report/axis.hpp"

#include <gtest/gtest.h>

namespace foldplan::report {
namespace {

TEST(NiceTicks, CoverTheRangeWithRoundSteps) {
  EXPECT_EQ(nice_ticks(0, 80, 8), (std::vector<double>{0, 20, 40, 60, 80}));
  EXPECT_EQ(nice_ticks(0, 80, 9), (std::vector<double>{0, 10, 20, 30, 40, 50, 60, 70, 80}));
  EXPECT_EQ(nice_ticks(0, 81, 8), (std::vector<double>{0, 20, 40, 60, 80, 100}));
  EXPECT_EQ(nice_ticks(0, 1.7, 6), (std::vector<double>{0, 0.5, 1, 1.5, 2}));
  EXPECT_EQ(nice_ticks(0, 9, 5), (std::vector<double>{0, 2.5, 5, 7.5, 10}));
  EXPECT_EQ(nice_ticks(12, 47, 5), (std::vector<double>{10, 20, 30, 40, 50}));
}

TEST(NiceTicks, DegenerateRanges) {
  // A single value widens to a unit range around it: 2.5 to 3.5 in steps of 0.2.
  const std::vector<double> ticks = nice_ticks(3, 3, 6);
  ASSERT_EQ(ticks.size(), 7u);
  EXPECT_NEAR(ticks.front(), 2.4, 1e-12);
  EXPECT_NEAR(ticks.back(), 3.6, 1e-12);
  EXPECT_EQ(nice_ticks(80, 0, 8).front(), 0); // reversed bounds
}

TEST(NiceTicks, StepsAreExactDecimalsInLabels) {
  const std::vector<double> ticks = nice_ticks(0, 0.7, 8);
  ASSERT_EQ(ticks.size(), 8u);
  EXPECT_EQ(tick_label(ticks[3]), "0.3");
  EXPECT_EQ(tick_label(ticks[7]), "0.7");
  EXPECT_EQ(tick_label(-0.0), "0");
  EXPECT_EQ(tick_label(1500), "1500");
}

TEST(LinearScale, MapsDomainToRangeIncludingInvertedYAxes) {
  const LinearScale x{.domain_low = 0, .domain_high = 80, .range_low = 100, .range_high = 900};
  EXPECT_DOUBLE_EQ(x(0), 100);
  EXPECT_DOUBLE_EQ(x(40), 500);
  const LinearScale y{.domain_low = 0, .domain_high = 2, .range_low = 400, .range_high = 40};
  EXPECT_DOUBLE_EQ(y(0.5), 310);
}

TEST(Axis, DrawsEveryTickLabelAndTheLabelWithItsUnit) {
  Svg svg(400, 300, "t");
  const PlotArea area{.left = 60, .top = 10, .width = 300, .height = 200};
  const std::vector<double> ticks = nice_ticks(0, 80, 5);
  const LinearScale x{.domain_low = 0, .domain_high = 80, .range_low = 60, .range_high = 360};
  draw_x_axis(svg, area, x, ticks, "memory per GPU (GB)");
  const std::string text = svg.str();
  for (const char* label : {">0</text>", ">20</text>", ">40</text>", ">60</text>", ">80</text>"})
    EXPECT_NE(text.find(label), std::string::npos) << label;
  EXPECT_NE(text.find(">memory per GPU (GB)</text>"), std::string::npos);
  // The tick at 40 sits in the middle of the plot.
  EXPECT_NE(text.find(R"(<text x="210" y="227")"), std::string::npos);
}

} // namespace
} // namespace foldplan::report
