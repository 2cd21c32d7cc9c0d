#include "runtime/issue_schedule.hpp"

#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

#include "core/errors.hpp"

namespace foldplan::runtime {
namespace {

// What peer `peer_rank` sends to the rank at `position` in the all-to-all-v `op`: its own
// program's op of the same id and name carries its split.
double bytes_sent_by_peer(const StepProgram& program, const Op& op, std::int64_t peer_rank,
                          std::size_t position) {
  const RankProgram* peer = program_of_rank(program, peer_rank);
  const Op* match = nullptr;
  if (peer != nullptr) {
    const auto found = std::find_if(peer->ops.begin(), peer->ops.end(), [&](const Op& candidate) {
      return candidate.id == op.id && candidate.name == op.name;
    });
    if (found != peer->ops.end() && std::holds_alternative<CollectiveShape>(found->shape))
      match = &*found;
  }
  if (match == nullptr) {
    throw InputError(fmt::format("program: {}", describe_op(op)),
                     fmt::format("rank {} has no all_to_all_v op of the same id and name, so "
                                 "its split cannot be read",
                                 peer_rank));
  }
  const auto& split = std::get<CollectiveShape>(match->shape).send_bytes_per_peer;
  return position < split.size() ? split[position] : 0.0;
}

void grow(double& largest, double bytes) {
  largest = std::max(largest, bytes);
}

void size_buffers(const Op& op, BufferBytes& buffers) {
  constexpr double kBf16 = 2, kFp32 = 4;
  if (const auto* gemm = std::get_if<GemmShape>(&op.shape)) {
    const auto groups = static_cast<double>(gemm->groups);
    const auto m = static_cast<double>(gemm->m), n = static_cast<double>(gemm->n),
               k = static_cast<double>(gemm->k);
    grow(buffers.gemm_a, groups * m * k * kBf16);
    grow(buffers.gemm_b, groups * k * n * kBf16);
    grow(gemm->accumulate_fp32 ? buffers.gemm_c_fp32 : buffers.gemm_c,
         groups * m * n * (gemm->accumulate_fp32 ? kFp32 : kBf16));
  } else if (const auto* memory = std::get_if<MemoryBoundShape>(&op.shape)) {
    grow(buffers.memory_bound, memory->bytes);
  } else if (const auto* collective = std::get_if<CollectiveShape>(&op.shape)) {
    grow(buffers.communication, collective->bytes);
  } else if (const auto* transfer = std::get_if<PeerTransfer>(&op.shape)) {
    grow(buffers.communication, transfer->bytes);
  }
}

} // namespace

std::string describe_op(const Op& op) {
  return fmt::format("op {} {}", op.id, op.name);
}

IssueSchedule make_issue_schedule(const StepProgram& program, std::int64_t rank) {
  const RankProgram* own = program_of_rank(program, rank);
  if (own == nullptr)
    throw InputError("program.programs", fmt::format("no program runs rank {}", rank));
  IssueSchedule schedule{.rank = rank, .program = own};
  std::unordered_map<int, std::size_t> position_of_id;
  for (std::size_t index = 0; index < own->ops.size(); ++index) {
    const Op& op = own->ops[index];
    if (const auto* gemm = std::get_if<GemmShape>(&op.shape);
        gemm != nullptr && gemm->dtype == GemmDtype::fp8) {
      throw InputError(fmt::format("program: {}", describe_op(op)),
                       "fp8 GEMMs are not executed yet (the runtime runs bf16 plans; estimate "
                       "the plan without --fp8 to run it)");
    }
    IssuedOp issued{.index = index};
    for (const int dependency : op.deps) {
      const std::size_t position = position_of_id.at(dependency);
      if (own->ops[position].stream != op.stream)
        issued.cross_waits.push_back(position);
    }
    int group_id = -1;
    if (const auto* collective = std::get_if<CollectiveShape>(&op.shape)) {
      group_id = collective->group_id;
      if (collective->op == CollectiveOp::all_to_all_v) {
        const std::vector<std::int64_t>& group =
            *group_holding(*find_comm_group(program, group_id), rank);
        const auto own_position =
            static_cast<std::size_t>(std::find(group.begin(), group.end(), rank) - group.begin());
        for (const std::int64_t peer : group)
          issued.recv_bytes_per_peer.push_back(bytes_sent_by_peer(program, op, peer, own_position));
      }
    } else if (const auto* transfer = std::get_if<PeerTransfer>(&op.shape)) {
      group_id = transfer->group_id;
    }
    if (group_id >= 0 && std::find(schedule.group_ids.begin(), schedule.group_ids.end(),
                                   group_id) == schedule.group_ids.end())
      schedule.group_ids.push_back(group_id);
    size_buffers(op, schedule.buffers);
    schedule.streams_used[stream_slot(op.stream)] = true;
    position_of_id.emplace(op.id, index);
    schedule.ops.push_back(std::move(issued));
  }
  // Receives can exceed sends under skewed all-to-all-v.
  for (const IssuedOp& issued : schedule.ops) {
    double received = 0;
    for (const double bytes : issued.recv_bytes_per_peer)
      received += bytes;
    grow(schedule.buffers.communication, received);
  }
  std::sort(schedule.group_ids.begin(), schedule.group_ids.end());
  return schedule;
}

} // namespace foldplan::runtime
