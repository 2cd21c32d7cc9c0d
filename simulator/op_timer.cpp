#include "simulator/op_timer.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <variant>

namespace foldplan {
namespace {

GemmPrecision precision_of(GemmDtype dtype) {
  return dtype == GemmDtype::fp8 ? GemmPrecision::fp8 : GemmPrecision::bf16;
}

CollectiveKind kind_of(CollectiveOp op) {
  switch (op) {
  case CollectiveOp::all_reduce:
    return CollectiveKind::all_reduce;
  case CollectiveOp::all_gather:
    return CollectiveKind::all_gather;
  case CollectiveOp::reduce_scatter:
    return CollectiveKind::reduce_scatter;
  case CollectiveOp::all_to_all:
  case CollectiveOp::all_to_all_v:
    return CollectiveKind::all_to_all;
  }
  return CollectiveKind::all_to_all;
}

// Each member's (leaf group, node, domain), numbered by first appearance in the group: two groups
// with equal patterns are placed alike, whichever nodes they occupy.
std::vector<std::array<std::int64_t, 3>> layout_pattern(const Cluster& cluster,
                                                        const std::vector<std::int64_t>& members) {
  std::array<std::vector<std::int64_t>, 3> seen;
  std::vector<std::array<std::int64_t, 3>> pattern;
  pattern.reserve(members.size());
  for (const std::int64_t rank : members) {
    const std::array<std::int64_t, 3> where = {cluster.leaf_group_of(rank), cluster.node_of(rank),
                                               cluster.nvlink_domain_of(rank)};
    std::array<std::int64_t, 3> label{};
    for (std::size_t level = 0; level < 3; ++level) {
      auto& ids = seen[level];
      const auto found = std::find(ids.begin(), ids.end(), where[level]);
      label[level] = found - ids.begin();
      if (found == ids.end())
        ids.push_back(where[level]);
    }
    pattern.push_back(label);
  }
  return pattern;
}

} // namespace

bool CostModelOpTimer::ranks_interchangeable() const {
  const Cluster& cluster = context_.cluster();
  for (const CommGroup& family : program_.groups) {
    std::vector<std::array<std::int64_t, 3>> first;
    for (std::size_t g = 0; g < family.members.size(); ++g) {
      for (const std::int64_t rank : family.members[g]) {
        if (rank < 0 || rank >= cluster.num_gpus())
          return false;
      }
      auto pattern = layout_pattern(cluster, family.members[g]);
      if (g == 0)
        first = std::move(pattern);
      else if (pattern != first)
        return false;
    }
  }
  return true;
}

CostModelOpTimer::CostModelOpTimer(const CostContext& context, const StepProgram& program)
    : context_(context), program_(program) {
  const auto world = static_cast<std::size_t>(std::max<std::int64_t>(0, program.world_size));
  for (const CommGroup& family : program.groups) {
    auto& group_of_rank = group_of_rank_.emplace_back(world, -1);
    auto& position_of_rank = position_of_rank_.emplace_back(world, -1);
    for (std::size_t g = 0; g < family.members.size(); ++g) {
      for (std::size_t position = 0; position < family.members[g].size(); ++position) {
        const auto rank = static_cast<std::size_t>(family.members[g][position]);
        if (rank < world) {
          group_of_rank[rank] = static_cast<std::int32_t>(g);
          position_of_rank[rank] = static_cast<std::int32_t>(position);
        }
      }
    }
    placements_.emplace_back(family.members.size());
  }
}

CostModelOpTimer::GroupSeat CostModelOpTimer::seat(int group_id, std::int64_t rank) const {
  for (std::size_t f = 0; f < program_.groups.size(); ++f) {
    if (program_.groups[f].id != group_id)
      continue;
    const auto r = static_cast<std::size_t>(rank);
    if (rank < 0 || r >= group_of_rank_[f].size() || group_of_rank_[f][r] < 0)
      break;
    return {.family = f, .group = group_of_rank_[f][r], .position = position_of_rank_[f][r]};
  }
  throw std::invalid_argument("rank has no group in the op's family (validate the program)");
}

const GroupPlacement& CostModelOpTimer::placement(const GroupSeat& seat) const {
  std::optional<GroupPlacement>& placed =
      placements_[seat.family][static_cast<std::size_t>(seat.group)];
  if (!placed) {
    placed =
        place_group(context_.cluster(),
                    program_.groups[seat.family].members[static_cast<std::size_t>(seat.group)]);
  }
  return *placed;
}

double CostModelOpTimer::operator()(const Op& op, std::int64_t rank) const {
  const ComputeCostModel& compute = context_.compute();
  const CollectiveCostModel& collectives = context_.collectives();
  if (const auto* gemm = std::get_if<GemmShape>(&op.shape)) {
    const GemmPrecision precision = precision_of(gemm->dtype);
    const GemmOutput output =
        gemm->accumulate_fp32 ? GemmOutput::fp32_accumulate : GemmOutput::bf16;
    return gemm->groups > 1 ? compute.grouped_gemm_time_s(gemm->groups, gemm->m, gemm->n, gemm->k,
                                                          precision, output)
                            : compute.gemm_time_s(gemm->m, gemm->n, gemm->k, precision, output);
  }
  if (const auto* attention = std::get_if<AttentionOpShape>(&op.shape)) {
    const AttentionShape shape{.batch = attention->batch,
                               .heads = attention->heads,
                               .kv_heads = attention->kv_heads,
                               .seq_q = attention->seq_q,
                               .seq_kv = attention->seq_kv,
                               .qk_head_dim = attention->qk_head_dim,
                               .v_head_dim = attention->v_head_dim,
                               .causal = attention->causal};
    return attention->backward ? compute.attention_backward_time_s(shape)
                               : compute.attention_forward_time_s(shape);
  }
  if (const auto* memory = std::get_if<MemoryBoundShape>(&op.shape)) {
    return compute.memory_bound_time_s(memory->bytes, memory->kernels);
  }
  if (const auto* collective = std::get_if<CollectiveShape>(&op.shape)) {
    const GroupSeat where = seat(collective->group_id, rank);
    const GroupPlacement& group = placement(where);
    if (collective->op == CollectiveOp::all_to_all_v && !collective->send_bytes_per_peer.empty()) {
      // What stays on the rank is free. Of the rest, the largest split sets the pace: its peer
      // receives about that much from every sender (the dispatcher's hot expert rank), so the
      // remote bytes are scaled by the largest split over the mean one.
      const auto& splits = collective->send_bytes_per_peer;
      const auto own = static_cast<std::size_t>(where.position);
      double remote = 0;
      double largest = 0;
      for (std::size_t peer = 0; peer < splits.size(); ++peer) {
        if (peer == own)
          continue;
        remote += splits[peer];
        largest = std::max(largest, splits[peer]);
      }
      const double mean = splits.size() > 1 ? remote / static_cast<double>(splits.size() - 1) : 0;
      const double load = mean > 0 ? largest / mean : 1.0;
      return collectives.all_to_all_time_s(group, remote, std::max(1.0, load));
    }
    return collectives.time_s(kind_of(collective->op), group, collective->bytes);
  }
  const auto& transfer = std::get<PeerTransfer>(op.shape);
  const GroupSeat where = seat(transfer.group_id, rank);
  const std::int64_t peer =
      program_.groups[where.family].members[static_cast<std::size_t>(where.group)]
                                           [static_cast<std::size_t>(transfer.peer_index)];
  const std::int64_t pair[] = {std::min(rank, peer), std::max(rank, peer)};
  return collectives.time_s(CollectiveKind::send_recv, place_group(context_.cluster(), pair),
                            transfer.bytes);
}

} // namespace foldplan
