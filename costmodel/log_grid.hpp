// LogGrid: a measured efficiency (achieved / peak FLOP/s) over a grid of shapes, interpolated
// linearly in the logarithms of both the coordinates and the efficiency — between neighbouring
// measurements, time then follows a power law of the shape, which is how GEMM and attention times
// scale. Built once from scattered measurements; a lookup is a binary search per axis, no
// allocation.
//
// Construction, in order:
//  1. Time is made non-decreasing among the measured points: a point's time becomes the least time
//     of any measured point at least as large in every coordinate. A smaller problem can always be
//     run as the larger one (padding), so an inversion is a library heuristic choosing a worse
//     kernel, or noise (docs/measurements.md: ±5–10% per point); the planner's search relies on
//     cost growing with size. (17 of the 531 bf16 H100 points, 11 of them at m = 64.)
//  2. The axes are the distinct measured coordinates. A grid node that was not measured is
//     interpolated along the axis with the narrowest bracket of measured nodes;
//  3. else, where no axis brackets it, taken from the nearest known node along each of two axes
//     and their common corner (the two effects as independent: e(a', b) · e(a, b') / e(a', b')),
//     never above the best measured efficiency;
//  4. else it holds the efficiency of the nearest known node.
//  5. Step 1 again over the whole grid, filled nodes included.
// Measured points that no inversion touches come back exactly.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <vector>

namespace foldplan {

template <std::size_t Dims> class LogGrid {
public:
  using Coordinates = std::array<double, Dims>;

  struct Measurement {
    Coordinates coordinates; // positive
    double efficiency = 0;   // positive
  };

  // Where a lookup fell relative to each axis's measured range.
  enum class Side { below, inside, above };

  struct Lookup {
    double efficiency = 0; // at `clamped`
    Coordinates clamped{}; // the coordinates, clamped to the measured range of each axis
    std::array<Side, Dims> side{};
  };

  LogGrid() = default;
  // `flops_exponents[d]`: FLOPs ∝ Π coordinate[d]^flops_exponents[d] (GEMM m, n, k: 1, 1, 1), so
  // that time ∝ FLOPs / efficiency can be kept monotone. Measurements at the same coordinates are
  // averaged geometrically. `measurements` must not be empty.
  LogGrid(std::span<const Measurement> measurements, const Coordinates& flops_exponents);

  bool empty() const { return log_efficiency_.empty(); }
  Lookup at(const Coordinates& coordinates) const;
  const std::vector<double>& axis(std::size_t dimension) const { return axes_[dimension]; }

private:
  std::size_t node_index(const std::array<std::size_t, Dims>& indices) const;

  std::array<std::vector<double>, Dims> axes_;     // increasing
  std::array<std::vector<double>, Dims> log_axes_; // log of axes_
  std::array<std::size_t, Dims> strides_{};
  std::vector<double> log_efficiency_; // one per node, row-major over the axes
};

extern template class LogGrid<2>;
extern template class LogGrid<3>;

} // namespace foldplan
