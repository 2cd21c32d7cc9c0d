#include "report/time_unit.hpp"

#include <fmt/format.h>

namespace foldplan::report {

TimeUnit time_unit_for(double max_s) {
  if (max_s >= 2)
    return {.symbol = "s", .per_second = 1};
  if (max_s >= 2e-3)
    return {.symbol = "ms", .per_second = 1e3};
  return {.symbol = "µs", .per_second = 1e6};
}

std::string format_time_in(double seconds, const TimeUnit& unit) {
  if (unit.per_second == 1)
    return fmt::format("{:.2f} {}", seconds, unit.symbol);
  return fmt::format("{:.1f} {}", seconds * unit.per_second, unit.symbol);
}

} // namespace foldplan::report
