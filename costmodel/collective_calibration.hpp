// MeasuredBusBandwidth: one NCCL curve measured over NVLink on a few GPUs (topologies/calibration,
// "collectives": one kind, one GPU count, times by message size), split into the parts that carry
// over to groups of other sizes: a fixed overhead per call, and the bus bandwidth NCCL reaches at
// each message size once the latency of the algorithm's steps is taken out.
//
// Why not a two-parameter fit time = α + bytes·factor/bw: on the 2×H200 curves the achieved bus
// bandwidth keeps climbing from 1 MiB to 1 GiB (all_reduce 59 → 331 GB/s) far beyond what a
// latency term explains, so any single (α, bw) misses: least squares on relative error gives
// α = 10.2 µs, bw = 284 GB/s and is off by −22% at 1 MiB, −31% at 4 MiB and +17% at 1 GiB; on
// absolute error it is off by +54% at 1 MiB. The bandwidth therefore stays a curve of message size.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "costmodel/collective_kind.hpp"

namespace foldplan {

struct TimedMessage {
  double bytes = 0; // as nccl-tests counts the message (see collective_kind.hpp)
  double time_s = 0;
};

class MeasuredBusBandwidth {
public:
  // `points`: one kind measured on `gpus` GPUs of one NVLink domain, in any order.
  // `step_latency_s`: what one algorithm step costs on NVLink (the cluster's figure).
  // nullopt when no point is slower than the latency floor, i.e. nothing was learnt about
  // bandwidth. Throws InputError naming `field` for a non-positive size or time, or gpus < 2.
  static std::optional<MeasuredBusBandwidth> from_points(CollectiveKind kind, std::int64_t gpus,
                                                         std::span<const TimedMessage> points,
                                                         double step_latency_s, const char* field);

  std::int64_t gpus() const { return gpus_; }
  // What a call costs beyond the latency of its steps (launch, synchronisation): the fastest
  // measured time less gpus' steps at step_latency_s, never negative.
  double call_overhead_s() const { return call_overhead_s_; }
  // Bus bandwidth reached at a message of `bytes`, latency excluded: log-log interpolation
  // between measured sizes, held flat beyond the smallest and the largest.
  double bus_bw_Bps(double bytes) const;
  // At the largest measured size: the ceiling used in place of the datasheet NVLink rate.
  double largest_size_bus_bw_Bps() const { return bus_bw_Bps(bytes_.back()); }

private:
  MeasuredBusBandwidth() = default;

  std::int64_t gpus_ = 0;
  double call_overhead_s_ = 0;
  std::vector<double> bytes_;          // increasing
  std::vector<double> log_bytes_;      // ln of bytes_
  std::vector<double> log_bus_bw_Bps_; // ln of the bus bandwidth at each size
};

} // namespace foldplan
