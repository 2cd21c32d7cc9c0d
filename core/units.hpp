// Units. Inside foldplan every quantity is in SI base units held in a double (seconds, bytes,
// FLOP, bytes/s) and its name carries the unit (time_s, bytes, bw_Bps). Conversions happen only
// when reading presets (whose keys spell the unit: nvlink_GBps, nic_Gbps) and when printing.
#pragma once

#include <string>

namespace foldplan::units {

inline constexpr double kKilo = 1e3;
inline constexpr double kMega = 1e6;
inline constexpr double kGiga = 1e9;
inline constexpr double kTera = 1e12;
inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
inline constexpr double kBitsPerByte = 8.0;

// Bytes per element of the dtypes training moves around.
inline constexpr double kBf16Bytes = 2.0;
inline constexpr double kFp32Bytes = 4.0;
inline constexpr double kInt64Bytes = 8.0;

inline constexpr double gigabytes_per_s(double GBps) {
  return GBps * kGiga;
}
inline constexpr double gigabits_per_s(double Gbps) {
  return Gbps * kGiga / kBitsPerByte;
}
inline constexpr double tera_flops(double tflops) {
  return tflops * kTera;
}
inline constexpr double microseconds(double us) {
  return us * 1e-6;
}

// Human renderings with units, for tables: "1.25 ms", "78.0 GB", "487.7 TFLOP/s".
std::string format_time(double time_s);
std::string format_bytes(double bytes);
std::string format_count(double count); // 46.7B, 12.9M

} // namespace foldplan::units
