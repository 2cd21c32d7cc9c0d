// How one rank issues its step program: ops in list order (a topological order), each on the CUDA
// stream of its Stream, waiting (cudaStreamWaitEvent) only on dependencies that ran on another
// stream — a dependency on the same stream is already ordered by the stream. Also what the rank
// must allocate before it starts (synthetic buffers sized from its largest op of each kind) and,
// for all-to-all-v, how many bytes it receives from each peer (the peer's own split towards it).
// Host-only, so CI checks the bookkeeping the GPU executor relies on.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/step_program.hpp"

namespace foldplan::runtime {

inline constexpr std::size_t kStreamCount = 6; // Stream::compute … Stream::cp_comm

constexpr std::size_t stream_slot(Stream stream) {
  return static_cast<std::size_t>(stream);
}

struct IssuedOp {
  std::size_t index = 0;                        // position in the rank's op list
  std::vector<std::size_t> cross_waits = {};    // positions of dependencies on other streams
  std::vector<double> recv_bytes_per_peer = {}; // all_to_all_v: bytes from each group member
};

// Largest buffers any op of the rank touches, in bytes (0 when no op needs that kind).
struct BufferBytes {
  double gemm_a = 0, gemm_b = 0, gemm_c = 0; // bf16, all groups of a grouped GEMM together
  double gemm_c_fp32 = 0;                    // accumulate_fp32 outputs
  double memory_bound = 0;                   // bytes one memory-bound op streams (read + write)
  double communication = 0;                  // send (and, separately, receive) buffer
  bool operator==(const BufferBytes&) const = default;
};

struct IssueSchedule {
  std::int64_t rank = 0;
  const RankProgram* program = nullptr;
  std::vector<IssuedOp> ops = {};                // in issue order, one per op
  std::array<bool, kStreamCount> streams_used{}; // a CUDA stream is made only where used
  std::vector<int> group_ids = {};               // families the rank communicates over
  BufferBytes buffers = {};
};

// The schedule of `rank` (validated program). InputError naming the op when the runtime cannot
// execute it (fp8 GEMMs: no fp8 path yet) or when an all-to-all-v peer's program has no matching
// op (same id and name) to read its split from.
IssueSchedule make_issue_schedule(const StepProgram& program, std::int64_t rank);

// "op 12 layer0.moe.fc1.fwd": how errors name an op.
std::string describe_op(const Op& op);

} // namespace foldplan::runtime
