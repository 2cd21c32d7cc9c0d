// The time unit a chart labels its axis in: seconds for steps over two seconds, else
// milliseconds (microseconds for sub-millisecond ranges), so tick labels stay short.
#pragma once

#include <string>

namespace foldplan::report {

struct TimeUnit {
  const char* symbol = "ms";
  double per_second = 1e3;
};

// The unit for an axis whose largest value is `max_s` seconds.
TimeUnit time_unit_for(double max_s);

// "123.4 ms" in `unit` (one decimal; two for seconds).
std::string format_time_in(double seconds, const TimeUnit& unit);

} // namespace foldplan::report
