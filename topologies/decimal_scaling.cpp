#include "topologies/decimal_scaling.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace foldplan {

double shift_decimal_point(double value, int places) {
  if (!std::isfinite(value) || value == 0)
    return value;
  // Without a precision, std::to_chars writes the shortest digits that read back as `value`.
  std::array<char, 64> buffer{};
  const auto written = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value,
                                     std::chars_format::scientific);
  if (written.ec != std::errc())
    throw std::logic_error("shift_decimal_point: to_chars failed");
  const std::string_view text(buffer.data(), static_cast<std::size_t>(written.ptr - buffer.data()));

  // Scientific form is "<mantissa>e<exponent>"; only the exponent changes.
  const std::size_t exponent_mark = text.find('e');
  std::string_view exponent_text = text.substr(exponent_mark + 1);
  if (exponent_text.front() == '+')
    exponent_text.remove_prefix(1); // from_chars takes no '+'
  int exponent = 0;
  std::from_chars(exponent_text.data(), exponent_text.data() + exponent_text.size(), exponent);

  std::string shifted(text.substr(0, exponent_mark));
  shifted += 'e';
  shifted += std::to_string(exponent + places);
  double result = 0;
  const auto read = std::from_chars(shifted.data(), shifted.data() + shifted.size(), result);
  // Beyond double's range from_chars leaves `result` untouched; answer as arithmetic would
  // (overflow to inf, underflow to 0).
  if (read.ec == std::errc::result_out_of_range)
    return value * std::pow(10.0, places);
  return result;
}

} // namespace foldplan
