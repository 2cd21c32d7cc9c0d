#include "core/units.hpp"

#include <cmath>

#include <fmt/format.h>

namespace foldplan::units {

std::string format_time(double time_s) {
  const double magnitude = std::fabs(time_s);
  if (magnitude >= 1.0)
    return fmt::format("{:.3f} s", time_s);
  if (magnitude >= 1e-3)
    return fmt::format("{:.2f} ms", time_s * 1e3);
  return fmt::format("{:.1f} us", time_s * 1e6);
}

std::string format_bytes(double bytes) {
  const double magnitude = std::fabs(bytes);
  if (magnitude >= kGiga)
    return fmt::format("{:.1f} GB", bytes / kGiga);
  if (magnitude >= kMega)
    return fmt::format("{:.1f} MB", bytes / kMega);
  if (magnitude >= kKilo)
    return fmt::format("{:.1f} kB", bytes / kKilo);
  return fmt::format("{:.0f} B", bytes);
}

std::string format_count(double count) {
  const double magnitude = std::fabs(count);
  if (magnitude >= kTera)
    return fmt::format("{:.2f}T", count / kTera);
  if (magnitude >= kGiga)
    return fmt::format("{:.1f}B", count / kGiga);
  if (magnitude >= kMega)
    return fmt::format("{:.1f}M", count / kMega);
  if (magnitude >= kKilo)
    return fmt::format("{:.1f}K", count / kKilo);
  return fmt::format("{:.0f}", count);
}

} // namespace foldplan::units
