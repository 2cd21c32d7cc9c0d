// CollectiveKind: the NCCL operations a step program communicates with, their names in calibration
// files, and the two numbers every collective cost starts from — the bytes each rank puts on the
// wire for a message of a given size (nccl-tests' bus-bandwidth factor) and the number of ring
// steps on n ranks (NCCL's own latency model).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace foldplan {

enum class CollectiveKind { all_reduce, all_gather, reduce_scatter, all_to_all, send_recv };
inline constexpr int kNumCollectiveKinds = 5;

// As topologies/calibration/*.json spell them ("collectives"[].kind).
constexpr std::string_view collective_name(CollectiveKind kind) {
  switch (kind) {
  case CollectiveKind::all_reduce:
    return "all_reduce";
  case CollectiveKind::all_gather:
    return "all_gather";
  case CollectiveKind::reduce_scatter:
    return "reduce_scatter";
  case CollectiveKind::all_to_all:
    return "all_to_all";
  case CollectiveKind::send_recv:
    return "send_recv";
  }
  return "";
}

// nullopt for kinds the cost model does not use (e.g. "send_recv_bidirectional").
constexpr std::optional<CollectiveKind> collective_kind_named(std::string_view name) {
  for (int index = 0; index < kNumCollectiveKinds; ++index) {
    const auto kind = static_cast<CollectiveKind>(index);
    if (collective_name(kind) == name)
      return kind;
  }
  return std::nullopt;
}

// Bytes each rank sends (and receives) per byte of message, message sizes counted as nccl-tests
// counts them; nccl-tests doc/PERFORMANCE.md: busbw = algbw × 2(n−1)/n for all-reduce, × (n−1)/n
// for all-gather, reduce-scatter and all-to-all, × 1 for send/recv.
constexpr double bus_factor(CollectiveKind kind, std::int64_t ranks) {
  const double n = static_cast<double>(ranks);
  switch (kind) {
  case CollectiveKind::all_reduce:
    return 2 * (n - 1) / n;
  case CollectiveKind::all_gather:
  case CollectiveKind::reduce_scatter:
  case CollectiveKind::all_to_all:
    return (n - 1) / n;
  case CollectiveKind::send_recv:
    return 1;
  }
  return 1;
}

// Algorithm steps on `ranks` ranks, each paying one link latency. NCCL src/graph/tuning.cc
// (nsteps): ring all-reduce 2(n−1), ring all-gather / reduce-scatter n−1. All-to-all is n−1
// point-to-point transfers (one per peer); send/recv one transfer.
constexpr std::int64_t ring_steps(CollectiveKind kind, std::int64_t ranks) {
  switch (kind) {
  case CollectiveKind::all_reduce:
    return 2 * (ranks - 1);
  case CollectiveKind::all_gather:
  case CollectiveKind::reduce_scatter:
  case CollectiveKind::all_to_all:
    return ranks - 1;
  case CollectiveKind::send_recv:
    return 1;
  }
  return 1;
}

} // namespace foldplan
