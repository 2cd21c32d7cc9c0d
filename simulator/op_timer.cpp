#include "simulator/op_timer.hpp"

#include <algorithm>
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

} // namespace

CostModelOpTimer::CostModelOpTimer(const CostContext& context, const StepProgram& program)
    : context_(context), program_(program) {}

const GroupPlacement& CostModelOpTimer::placement(int group_id, std::int64_t rank) const {
  const CommGroup* family = find_comm_group(program_, group_id);
  const std::vector<std::int64_t>* group = family ? group_holding(*family, rank) : nullptr;
  if (group == nullptr) {
    throw std::invalid_argument("rank has no group in the op's family (validate the program)");
  }
  const auto key = std::make_pair(group_id, group->front());
  auto found = placements_.find(key);
  if (found == placements_.end()) {
    found = placements_.emplace(key, place_group(context_.cluster(), *group)).first;
  }
  return found->second;
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
    const GroupPlacement& group = placement(collective->group_id, rank);
    if (collective->op == CollectiveOp::all_to_all_v && !collective->send_bytes_per_peer.empty()) {
      // The busiest peer sets the pace: scale the uniform all-to-all by the largest share.
      const auto& splits = collective->send_bytes_per_peer;
      const double largest = *std::max_element(splits.begin(), splits.end());
      const double mean = collective->bytes / static_cast<double>(splits.size());
      const double load = mean > 0 ? largest / mean : 1.0;
      const double remote = collective->bytes * static_cast<double>(group.num_ranks - 1) /
                            static_cast<double>(group.num_ranks);
      return collectives.all_to_all_time_s(group, remote, std::max(1.0, load));
    }
    return collectives.time_s(kind_of(collective->op), group, collective->bytes);
  }
  const auto& transfer = std::get<PeerTransfer>(op.shape);
  const CommGroup* family = find_comm_group(program_, transfer.group_id);
  const std::vector<std::int64_t>* group = family ? group_holding(*family, rank) : nullptr;
  if (group == nullptr) {
    throw std::invalid_argument("rank has no group in the transfer's family");
  }
  const std::int64_t peer = (*group)[static_cast<std::size_t>(transfer.peer_index)];
  const std::int64_t pair[] = {std::min(rank, peer), std::max(rank, peer)};
  return collectives.time_s(CollectiveKind::send_recv, place_group(context_.cluster(), pair),
                            transfer.bytes);
}

} // namespace foldplan
