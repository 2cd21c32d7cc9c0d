// LogGrid construction (gap filling, monotone time) and multilinear lookup in log space.
#include "costmodel/log_grid.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

namespace foldplan {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

} // namespace

template <std::size_t Dims>
std::size_t LogGrid<Dims>::node_index(const std::array<std::size_t, Dims>& indices) const {
  std::size_t index = 0;
  for (std::size_t d = 0; d < Dims; ++d)
    index += indices[d] * strides_[d];
  return index;
}

template <std::size_t Dims>
LogGrid<Dims>::LogGrid(std::span<const Measurement> measurements,
                       const Coordinates& flops_exponents) {
  assert(!measurements.empty());
  for (std::size_t d = 0; d < Dims; ++d) {
    std::vector<double>& axis = axes_[d];
    for (const Measurement& measurement : measurements) {
      assert(measurement.coordinates[d] > 0 && measurement.efficiency > 0);
      axis.push_back(measurement.coordinates[d]);
    }
    std::sort(axis.begin(), axis.end());
    axis.erase(std::unique(axis.begin(), axis.end()), axis.end());
    for (const double value : axis)
      log_axes_[d].push_back(std::log(value));
  }
  std::size_t node_count = 1;
  for (std::size_t d = Dims; d-- > 0;) {
    strides_[d] = node_count;
    node_count *= axes_[d].size();
  }
  const auto indices_of = [&](std::size_t node) {
    std::array<std::size_t, Dims> indices{};
    for (std::size_t d = 0; d < Dims; ++d)
      indices[d] = (node / strides_[d]) % axes_[d].size();
    return indices;
  };

  // Geometric mean of the measurements at each node.
  std::vector<double> log_sum(node_count, 0.0);
  std::vector<int> count(node_count, 0);
  double largest_log_efficiency = -kInfinity;
  for (const Measurement& measurement : measurements) {
    std::array<std::size_t, Dims> indices{};
    for (std::size_t d = 0; d < Dims; ++d) {
      const std::vector<double>& axis = axes_[d];
      indices[d] = static_cast<std::size_t>(
          std::lower_bound(axis.begin(), axis.end(), measurement.coordinates[d]) - axis.begin());
    }
    const std::size_t node = node_index(indices);
    log_sum[node] += std::log(measurement.efficiency);
    ++count[node];
    largest_log_efficiency = std::max(largest_log_efficiency, std::log(measurement.efficiency));
  }
  std::vector<double> measured(node_count, kInfinity); // +inf: not measured
  for (std::size_t node = 0; node < node_count; ++node) {
    if (count[node] > 0)
      measured[node] = log_sum[node] / count[node];
  }
  const auto known = [](const std::vector<double>& values, std::size_t node) {
    return values[node] != kInfinity;
  };
  const auto log_flops = [&](std::size_t node) {
    const std::array<std::size_t, Dims> indices = indices_of(node);
    double value = 0;
    for (std::size_t d = 0; d < Dims; ++d)
      value += flops_exponents[d] * log_axes_[d][indices[d]];
    return value;
  };

  // 1. Monotone time among the measured nodes first, so that one inverted point (a slow kernel
  // choice) does not spread into the nodes filled from it.
  std::vector<std::size_t> measured_nodes;
  for (std::size_t node = 0; node < node_count; ++node) {
    if (known(measured, node))
      measured_nodes.push_back(node);
  }
  std::vector<double> measured_log_time(node_count, kInfinity);
  for (const std::size_t node : measured_nodes) {
    const std::array<std::size_t, Dims> indices = indices_of(node);
    double least = log_flops(node) - measured[node];
    for (const std::size_t other : measured_nodes) {
      const std::array<std::size_t, Dims> other_indices = indices_of(other);
      bool dominates = true;
      for (std::size_t d = 0; d < Dims; ++d)
        dominates = dominates && other_indices[d] >= indices[d];
      if (dominates)
        least = std::min(least, log_flops(other) - measured[other]);
    }
    measured_log_time[node] = least;
  }
  for (const std::size_t node : measured_nodes)
    measured[node] = log_flops(node) - measured_log_time[node];

  // 2. Interpolation along the axis whose measured neighbours bracket the node most narrowly.
  std::vector<double> after_brackets = measured;
  for (std::size_t node = 0; node < node_count; ++node) {
    if (known(measured, node))
      continue;
    const std::array<std::size_t, Dims> indices = indices_of(node);
    double narrowest = kInfinity;
    for (std::size_t d = 0; d < Dims; ++d) {
      std::size_t lower = indices[d];
      bool has_lower = false;
      for (std::size_t i = indices[d]; i-- > 0;) {
        if (known(measured, node - (indices[d] - i) * strides_[d])) {
          lower = i;
          has_lower = true;
          break;
        }
      }
      std::size_t upper = indices[d];
      bool has_upper = false;
      for (std::size_t i = indices[d] + 1; i < axes_[d].size(); ++i) {
        if (known(measured, node + (i - indices[d]) * strides_[d])) {
          upper = i;
          has_upper = true;
          break;
        }
      }
      if (!has_lower || !has_upper)
        continue;
      const std::vector<double>& log_axis = log_axes_[d];
      const double width = log_axis[upper] - log_axis[lower];
      if (width >= narrowest)
        continue;
      narrowest = width;
      const double fraction = (log_axis[indices[d]] - log_axis[lower]) / width;
      const double lower_value = measured[node - (indices[d] - lower) * strides_[d]];
      const double upper_value = measured[node + (upper - indices[d]) * strides_[d]];
      after_brackets[node] = lower_value + fraction * (upper_value - lower_value);
    }
  }

  // The nearest known node along one axis: its index on that axis and its log distance.
  struct Neighbour {
    std::size_t index = 0;
    double distance = kInfinity;
  };
  const auto nearest_along = [&](const std::vector<double>& values,
                                 const std::array<std::size_t, Dims>& indices, std::size_t d) {
    Neighbour best;
    const std::size_t node = node_index(indices);
    const std::vector<double>& log_axis = log_axes_[d];
    for (std::size_t i = 0; i < axes_[d].size(); ++i) {
      if (i == indices[d])
        continue;
      const std::size_t other = node - indices[d] * strides_[d] + i * strides_[d];
      const double distance = std::fabs(log_axis[i] - log_axis[indices[d]]);
      if (known(values, other) && distance < best.distance)
        best = {i, distance};
    }
    return best;
  };

  // 3. Two independent effects: e(a', b) · e(a, b') / e(a', b'), in logs a sum.
  std::vector<double> after_corners = after_brackets;
  for (std::size_t node = 0; node < node_count; ++node) {
    if (known(after_brackets, node))
      continue;
    const std::array<std::size_t, Dims> indices = indices_of(node);
    double closest = kInfinity;
    for (std::size_t a = 0; a < Dims; ++a) {
      for (std::size_t b = a + 1; b < Dims; ++b) {
        const Neighbour along_a = nearest_along(after_brackets, indices, a);
        const Neighbour along_b = nearest_along(after_brackets, indices, b);
        if (along_a.distance == kInfinity || along_b.distance == kInfinity)
          continue;
        std::array<std::size_t, Dims> node_a = indices, node_b = indices, corner = indices;
        node_a[a] = corner[a] = along_a.index;
        node_b[b] = corner[b] = along_b.index;
        if (!known(after_brackets, node_index(corner)))
          continue;
        const double distance = along_a.distance + along_b.distance;
        if (distance >= closest)
          continue;
        closest = distance;
        const double value = after_brackets[node_index(node_a)] +
                             after_brackets[node_index(node_b)] -
                             after_brackets[node_index(corner)];
        after_corners[node] = std::min(value, largest_log_efficiency);
      }
    }
  }

  // 4. Whatever is left holds the efficiency of the nearest known node.
  log_efficiency_ = after_corners;
  for (std::size_t node = 0; node < node_count; ++node) {
    if (known(after_corners, node))
      continue;
    const std::array<std::size_t, Dims> indices = indices_of(node);
    double closest = kInfinity;
    for (std::size_t other = 0; other < node_count; ++other) {
      if (!known(after_corners, other))
        continue;
      const std::array<std::size_t, Dims> other_indices = indices_of(other);
      double distance = 0;
      for (std::size_t d = 0; d < Dims; ++d)
        distance += std::fabs(log_axes_[d][indices[d]] - log_axes_[d][other_indices[d]]);
      if (distance < closest) {
        closest = distance;
        log_efficiency_[node] = after_corners[other];
      }
    }
  }

  // 5. Time non-decreasing along every axis: log time = log FLOPs − log efficiency (+ a
  // constant), lowered to the least time of the nodes above it, visited from the largest down.
  std::vector<double> log_time(node_count);
  for (std::size_t node = 0; node < node_count; ++node)
    log_time[node] = log_flops(node) - log_efficiency_[node];
  for (std::size_t node = node_count; node-- > 0;) {
    const std::array<std::size_t, Dims> indices = indices_of(node);
    for (std::size_t d = 0; d < Dims; ++d) {
      if (indices[d] + 1 < axes_[d].size())
        log_time[node] = std::min(log_time[node], log_time[node + strides_[d]]);
    }
  }
  for (std::size_t node = 0; node < node_count; ++node)
    log_efficiency_[node] = log_flops(node) - log_time[node];
}

template <std::size_t Dims>
typename LogGrid<Dims>::Lookup LogGrid<Dims>::at(const Coordinates& coordinates) const {
  assert(!empty());
  Lookup lookup;
  std::array<std::size_t, Dims> lower{};
  std::array<double, Dims> upper_weight{};
  for (std::size_t d = 0; d < Dims; ++d) {
    const std::vector<double>& axis = axes_[d];
    const double x = coordinates[d];
    if (x <= axis.front()) {
      lookup.side[d] = x < axis.front() ? Side::below : Side::inside;
      lookup.clamped[d] = axis.front();
      lower[d] = 0;
      upper_weight[d] = 0;
    } else if (x >= axis.back()) {
      lookup.side[d] = x > axis.back() ? Side::above : Side::inside;
      lookup.clamped[d] = axis.back();
      lower[d] = axis.size() - 1;
      upper_weight[d] = 0;
    } else {
      lookup.side[d] = Side::inside;
      lookup.clamped[d] = x;
      const std::size_t upper =
          static_cast<std::size_t>(std::upper_bound(axis.begin(), axis.end(), x) - axis.begin());
      lower[d] = upper - 1;
      const std::vector<double>& log_axis = log_axes_[d];
      upper_weight[d] = (std::log(x) - log_axis[lower[d]]) / (log_axis[upper] - log_axis[lower[d]]);
    }
  }
  // Multilinear interpolation over the 2^Dims corners of the cell.
  double log_efficiency = 0;
  for (std::size_t corner = 0; corner < (std::size_t{1} << Dims); ++corner) {
    double weight = 1;
    std::size_t node = 0;
    for (std::size_t d = 0; d < Dims; ++d) {
      const bool upper = ((corner >> d) & 1) != 0;
      weight *= upper ? upper_weight[d] : 1 - upper_weight[d];
      node += (lower[d] + (upper ? 1 : 0)) * strides_[d];
    }
    if (weight != 0)
      log_efficiency += weight * log_efficiency_[node];
  }
  lookup.efficiency = std::exp(log_efficiency);
  return lookup;
}

template class LogGrid<2>;
template class LogGrid<3>;

} // namespace foldplan
