#include "costmodel/collective_calibration.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/errors.hpp"

namespace foldplan {

std::optional<MeasuredBusBandwidth>
MeasuredBusBandwidth::from_points(CollectiveKind kind, std::int64_t gpus,
                                  std::span<const TimedMessage> points, double step_latency_s,
                                  const char* field) {
  if (gpus < 2) {
    throw InputError(field, fmt::format("{} measured on {} GPUs (a collective needs at least 2)",
                                        collective_name(kind), gpus));
  }
  std::vector<TimedMessage> sorted(points.begin(), points.end());
  for (const TimedMessage& point : sorted) {
    if (!(point.bytes > 0) || !(point.time_s > 0)) {
      throw InputError(field, fmt::format("{} point of {} bytes in {} s: both must be positive",
                                          collective_name(kind), point.bytes, point.time_s));
    }
  }
  if (sorted.empty())
    return std::nullopt;
  std::sort(sorted.begin(), sorted.end(),
            [](const TimedMessage& a, const TimedMessage& b) { return a.bytes < b.bytes; });

  // The smallest messages are pure latency (at 4 KiB the bytes take < 0.1% of the 8–11 µs the
  // 2×H200 run measured), so the fastest point is the latency of gpus' steps plus a fixed
  // overhead of the call.
  double latency_floor_s = sorted.front().time_s;
  for (const TimedMessage& point : sorted)
    latency_floor_s = std::min(latency_floor_s, point.time_s);
  const double steps_latency_s = static_cast<double>(ring_steps(kind, gpus)) * step_latency_s;

  MeasuredBusBandwidth curve;
  curve.gpus_ = gpus;
  curve.call_overhead_s_ = std::max(0.0, latency_floor_s - steps_latency_s);
  const double latency_s = curve.call_overhead_s_ + steps_latency_s;

  // What remains of each time is the bytes' share; a time at or under the floor says nothing
  // about bandwidth. The bytes' time is kept non-decreasing in size (a noisy point that ran
  // faster than a smaller one is raised to it), so that interpolated times are monotonic.
  const double factor = bus_factor(kind, gpus);
  double previous_transfer_s = 0;
  for (const TimedMessage& point : sorted) {
    const double transfer_s = std::max(point.time_s - latency_s, previous_transfer_s);
    if (transfer_s <= 0)
      continue;
    if (!curve.bytes_.empty() && point.bytes == curve.bytes_.back())
      continue; // a repeated size: the first (after the monotonic raise) stands
    previous_transfer_s = transfer_s;
    curve.bytes_.push_back(point.bytes);
    curve.log_bytes_.push_back(std::log(point.bytes));
    curve.log_bus_bw_Bps_.push_back(std::log(factor * point.bytes / transfer_s));
  }
  if (curve.bytes_.empty())
    return std::nullopt;
  return curve;
}

double MeasuredBusBandwidth::bus_bw_Bps(double bytes) const {
  if (bytes <= bytes_.front())
    return std::exp(log_bus_bw_Bps_.front());
  if (bytes >= bytes_.back())
    return std::exp(log_bus_bw_Bps_.back());
  // First measured size above `bytes`; its predecessor is at or below.
  const auto above = std::upper_bound(bytes_.begin(), bytes_.end(), bytes);
  const std::size_t upper = static_cast<std::size_t>(above - bytes_.begin());
  const std::size_t lower = upper - 1;
  const double position =
      (std::log(bytes) - log_bytes_[lower]) / (log_bytes_[upper] - log_bytes_[lower]);
  // Between two sizes the bus bandwidth grows as a power of the size whose exponent is at most 1
  // (the bytes' time is non-decreasing), so time stays monotonic in size.
  return std::exp(log_bus_bw_Bps_[lower] +
                  position * (log_bus_bw_Bps_[upper] - log_bus_bw_Bps_[lower]));
}

} // namespace foldplan
