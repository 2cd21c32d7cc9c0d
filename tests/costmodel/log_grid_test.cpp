#include "costmodel/log_grid.hpp"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace foldplan {
namespace {

using Grid2 = LogGrid<2>;
constexpr Grid2::Coordinates kTimeProportionalToBoth{1.0, 1.0};

TEST(LogGrid, MeasuredNodesComeBackExactly) {
  const std::vector<Grid2::Measurement> points = {
      {{1, 10}, 0.2}, {{4, 10}, 0.5}, {{1, 20}, 0.3}, {{4, 20}, 0.6}};
  const Grid2 grid(points, kTimeProportionalToBoth);
  for (const Grid2::Measurement& point : points) {
    const Grid2::Lookup lookup = grid.at(point.coordinates);
    EXPECT_DOUBLE_EQ(lookup.efficiency, point.efficiency);
    EXPECT_EQ(lookup.side[0], Grid2::Side::inside);
    EXPECT_EQ(lookup.side[1], Grid2::Side::inside);
  }
}

TEST(LogGrid, InterpolatesLinearlyInTheLogarithms) {
  const std::vector<Grid2::Measurement> points = {{{1, 10}, 0.2}, {{4, 10}, 0.8}};
  const Grid2 grid(points, kTimeProportionalToBoth);
  // Half-way in log x (x = 2) is the geometric mean: √(0.2 · 0.8) = 0.4.
  EXPECT_DOUBLE_EQ(grid.at({2, 10}).efficiency, 0.4);
  // A quarter of the way (x = √2): 0.2 · 4^(1/4).
  EXPECT_NEAR(grid.at({std::sqrt(2.0), 10}).efficiency, 0.2 * std::pow(4.0, 0.25), 1e-12);
}

TEST(LogGrid, ClampsOutsideTheMeasuredRangeAndSaysWhere) {
  const std::vector<Grid2::Measurement> points = {{{2, 10}, 0.2}, {{8, 10}, 0.4}};
  const Grid2 grid(points, kTimeProportionalToBoth);
  const Grid2::Lookup below = grid.at({1, 10});
  EXPECT_DOUBLE_EQ(below.efficiency, 0.2);
  EXPECT_EQ(below.side[0], Grid2::Side::below);
  EXPECT_EQ(below.clamped[0], 2.0);
  const Grid2::Lookup above = grid.at({16, 30});
  EXPECT_DOUBLE_EQ(above.efficiency, 0.4);
  EXPECT_EQ(above.side[0], Grid2::Side::above);
  EXPECT_EQ(above.side[1], Grid2::Side::above);
  EXPECT_EQ(above.clamped[1], 10.0);
}

TEST(LogGrid, FillsAGapBetweenMeasuredNeighboursAlongAnAxis) {
  // Node (2, 10) was not measured (x = 2 exists only at y = 20); it lies between (1, 10) and
  // (4, 10) in the middle of log x.
  const std::vector<Grid2::Measurement> points = {
      {{1, 10}, 0.2}, {{4, 10}, 0.8}, {{1, 20}, 0.3}, {{2, 20}, 0.5}, {{4, 20}, 0.9}};
  const Grid2 grid(points, kTimeProportionalToBoth);
  EXPECT_DOUBLE_EQ(grid.at({2, 10}).efficiency, 0.4);
}

TEST(LogGrid, FillsAnUnbracketedCornerFromTwoIndependentEffects) {
  // (2, 20) has no measured neighbour on both sides: e(2,10) · e(1,20) / e(1,10).
  const std::vector<Grid2::Measurement> points = {{{1, 10}, 0.4}, {{2, 10}, 0.3}, {{1, 20}, 0.2}};
  const Grid2 grid(points, kTimeProportionalToBoth);
  EXPECT_NEAR(grid.at({2, 20}).efficiency, 0.3 * 0.2 / 0.4, 1e-12);
}

TEST(LogGrid, LowersAnInvertedTimeToTheLargerShapesTime) {
  // Time ∝ x·y / efficiency: (1, 10) takes 10/0.1 = 100, (2, 10) takes 20/0.4 = 50. Running the
  // smaller shape as the larger one is possible, so (1, 10) takes 50 too: efficiency 10/50.
  const std::vector<Grid2::Measurement> points = {{{1, 10}, 0.1}, {{2, 10}, 0.4}};
  const Grid2 grid(points, kTimeProportionalToBoth);
  EXPECT_DOUBLE_EQ(grid.at({1, 10}).efficiency, 0.2);
  EXPECT_DOUBLE_EQ(grid.at({2, 10}).efficiency, 0.4);
}

TEST(LogGrid, AnInvertedPointDoesNotSpreadIntoFilledNodes) {
  // (2, 20) is filled as e(2,10) · e(1,20) / e(1,10). (1, 10) is slow: time 10/0.1 = 100 against
  // 20/0.25 = 80 for (2, 10). Taken as measured it would give 0.25 · 0.1 / 0.1 = 0.25; cleaned
  // first to time 80 (efficiency 0.125) it gives 0.25 · 0.1 / 0.125 = 0.2.
  const std::vector<Grid2::Measurement> points = {{{1, 10}, 0.1}, {{2, 10}, 0.25}, {{1, 20}, 0.1}};
  const Grid2 grid(points, kTimeProportionalToBoth);
  EXPECT_DOUBLE_EQ(grid.at({1, 10}).efficiency, 0.125);
  EXPECT_NEAR(grid.at({2, 20}).efficiency, 0.2, 1e-12);
}

TEST(LogGrid, AFilledNodeIsNeverMoreEfficientThanTheBestMeasurement) {
  // 0.4 · 0.4 / 0.2 = 0.8 would be twice anything measured.
  const std::vector<Grid2::Measurement> points = {{{1, 10}, 0.2}, {{2, 10}, 0.4}, {{1, 20}, 0.4}};
  const Grid2 grid(points, kTimeProportionalToBoth);
  EXPECT_DOUBLE_EQ(grid.at({2, 20}).efficiency, 0.4);
}

TEST(LogGrid, RepeatedMeasurementsAreAveragedGeometrically) {
  const std::vector<Grid2::Measurement> points = {{{1, 10}, 0.2}, {{1, 10}, 0.8}};
  const Grid2 grid(points, kTimeProportionalToBoth);
  EXPECT_DOUBLE_EQ(grid.at({1, 10}).efficiency, 0.4);
}

} // namespace
} // namespace foldplan
