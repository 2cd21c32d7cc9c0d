#include "costmodel/layer_costs.hpp"

#include <algorithm>
#include <cmath>

#include "core/units.hpp"
#include "models/vocab_padding.hpp"
#include "parallel/rank_groups.hpp"

namespace foldplan {
namespace {

using units::kBf16Bytes;
using units::kFp32Bytes;
using units::kInt64Bytes;

// GPU idle time of one host synchronisation in PyTorch eager mode (copy to the CPU, return to
// Python, launch the next kernel): median 60 µs (28–74 µs) on an H100 with PyTorch 2.11,
// measured by tools/measure/host_sync_gap.py (tools/measure/results/h100_host_sync_gap.json).
// Megatron's dispatchers pay it once per MoE layer forward when split sizes are data-dependent.
constexpr double kHostSyncGap_s = 60e-6;

GroupPlacement place(const Cluster& cluster, const RankLayout& layout,
                     const std::vector<std::string>& varying) {
  const RankGroup group = group_holding_rank(layout, varying, 0);
  return place_group(cluster, group);
}

double as_double(std::int64_t value) {
  return static_cast<double>(value);
}

GemmPrecision gemm_precision(Precision precision) {
  return precision == Precision::bf16 ? GemmPrecision::bf16 : GemmPrecision::fp8;
}

} // namespace

PlacedGroups place_groups_of_rank_zero(const Cluster& cluster, const ParallelConfig& config,
                                       bool folding) {
  const RankLayout attention = attention_rank_layout(config);
  const RankLayout moe = moe_rank_layout(config, folding);
  return {.tp = place(cluster, attention, {"tp"}),
          .cp = place(cluster, attention, {"cp"}),
          .tp_cp = place(cluster, attention, {"tp", "cp"}),
          .pp = place(cluster, attention, {"pp"}),
          .dp_cp = place(cluster, attention, {"dp", "cp"}),
          .ep = place(cluster, moe, {"ep"}),
          .etp = place(cluster, moe, {"etp"}),
          .etp_ep = place(cluster, moe, {"etp", "ep"}),
          .edp = place(cluster, moe, {"cp", "edp"})};
}

LayerCostModel::LayerCostModel(const CostContext& context, const ModelSpec& model,
                               const ParallelConfig& config, const TrainingShape& training,
                               const PlanOptions& options, const PlacedGroups& groups,
                               double expert_load_factor)
    : context_(context), model_(model), config_(config), training_(training), options_(options),
      groups_(groups), expert_load_factor_(expert_load_factor),
      tokens_per_rank_(training.micro_batch_size * training.seq_length / config.cp),
      sequence_shard_(training.micro_batch_size * training.seq_length / (config.cp * config.tp)) {}

int router_forward_kernels(const PlanOptions& options) {
  constexpr int kTopKAndMap = 10, kCapacity = 6, kLoadBalancingLoss = 13;
  return kTopKAndMap + (options.capacity_factor ? kCapacity : 0) + kLoadBalancingLoss;
}

double LayerCostModel::memory_s(double bytes, int kernels) const {
  return context_.compute().memory_bound_time_s(bytes, kernels);
}

// Transformer Engine casts each GEMM input to fp8 with cast_transpose: it reads bf16 and writes
// the fp8 tensor in both layouts, because Hopper's fp8 GEMMs need K-major operands for the
// forward and for the backward GEMMs (2 + 1 + 1 bytes per element). Blockwise scaling adds one
// scale per 128 elements, negligible next to the data. Weights are cast once per step and cached
// across micro-batches (Megatron passes is_first_microbatch), so only activations count here.
double LayerCostModel::quantise_s(double elements) const {
  if (options_.precision == Precision::bf16)
    return 0.0;
  return memory_s(elements * (kBf16Bytes + 2.0));
}

double LayerCostModel::linear_forward_s(std::int64_t m, std::int64_t n, std::int64_t k) const {
  return context_.compute().gemm_time_s(m, n, k, gemm_precision(options_.precision)) +
         quantise_s(as_double(m) * as_double(k));
}

// Backward of Y[m,n] = X[m,k]·W[k,n]: dgrad dX = dY·Wᵀ is [m,n]x[n,k]; wgrad dW = Xᵀ·dY is
// [k,m]x[m,n].
double LayerCostModel::linear_backward_s(std::int64_t m, std::int64_t n, std::int64_t k) const {
  const GemmPrecision precision = gemm_precision(options_.precision);
  return context_.compute().gemm_time_s(m, k, n, precision) +
         context_.compute().gemm_time_s(k, n, m, precision, kWeightGradientOutput) +
         quantise_s(as_double(m) * as_double(n));
}

double LayerCostModel::grouped_linear_forward_s(std::int64_t groups, std::int64_t m, std::int64_t n,
                                                std::int64_t k) const {
  if (m <= 0)
    return 0.0;
  return context_.compute().grouped_gemm_time_s(groups, m, n, k,
                                                gemm_precision(options_.precision)) +
         quantise_s(as_double(groups) * as_double(m) * as_double(k));
}

double LayerCostModel::grouped_linear_backward_s(std::int64_t groups, std::int64_t m,
                                                 std::int64_t n, std::int64_t k) const {
  if (m <= 0)
    return 0.0;
  const GemmPrecision precision = gemm_precision(options_.precision);
  return context_.compute().grouped_gemm_time_s(groups, m, k, n, precision) +
         context_.compute().grouped_gemm_time_s(groups, k, n, m, precision, kWeightGradientOutput) +
         quantise_s(as_double(groups) * as_double(m) * as_double(n));
}

PhaseCost LayerCostModel::tp_gather_and_scatter(double bytes) const {
  PhaseCost cost;
  if (config_.tp == 1)
    return cost;
  const CollectiveCostModel& collectives = context_.collectives();
  cost.tp_comm_s = collectives.time_s(CollectiveKind::all_gather, groups_.tp, bytes) +
                   collectives.time_s(CollectiveKind::reduce_scatter, groups_.tp, bytes);
  return cost;
}

PassCost LayerCostModel::attention_block() const {
  const std::int64_t h = model_.hidden_size;
  const std::int64_t tp = config_.tp;
  const std::int64_t rows = tokens_per_rank_;
  const double shard_bytes = as_double(sequence_shard_ * h) * kBf16Bytes;
  // Megatron's sequence-parallel region boundaries carry the full (TP-gathered) activation.
  const double gathered_bytes = as_double(rows * h) * kBf16Bytes;
  PassCost cost;

  // Input norm and the residual add: streaming over the sequence shard.
  cost.forward.memory_bound_s += memory_s(shard_bytes * 2) + memory_s(shard_bytes * 3);
  cost.backward.memory_bound_s += memory_s(shard_bytes * 3) + memory_s(shard_bytes * 2);
  const PhaseCost tp_comm = tp_gather_and_scatter(gathered_bytes);
  cost.forward += tp_comm;
  cost.backward += tp_comm; // backward of all-gather is reduce-scatter and vice versa

  AttentionShape core{.batch = training_.micro_batch_size,
                      .heads = model_.num_attention_heads / tp,
                      .kv_heads = std::max<std::int64_t>(1, model_.num_query_groups / tp),
                      .seq_q = training_.seq_length / config_.cp,
                      .seq_kv = training_.seq_length / config_.cp,
                      .qk_head_dim = model_.kv_channels,
                      .v_head_dim = model_.kv_channels,
                      .causal = true};
  std::int64_t output_inner = 0; // k of the output projection
  if (model_.mla) {
    // Megatron MLA: the down projections are duplicated across TP, the up projections split.
    const MlaSpec& mla = *model_.mla;
    const std::int64_t heads = model_.num_attention_heads / tp;
    const std::int64_t qk = mla.qk_head_dim + mla.qk_pos_emb_head_dim;
    if (mla.q_lora_rank > 0) {
      cost.forward.gemm_s += linear_forward_s(rows, mla.q_lora_rank, h) +
                             linear_forward_s(rows, heads * qk, mla.q_lora_rank);
      cost.backward.gemm_s += linear_backward_s(rows, mla.q_lora_rank, h) +
                              linear_backward_s(rows, heads * qk, mla.q_lora_rank);
    } else {
      cost.forward.gemm_s += linear_forward_s(rows, heads * qk, h);
      cost.backward.gemm_s += linear_backward_s(rows, heads * qk, h);
    }
    const std::int64_t kv_down = mla.kv_lora_rank + mla.qk_pos_emb_head_dim;
    const std::int64_t kv_up = heads * (mla.qk_head_dim + mla.v_head_dim);
    cost.forward.gemm_s +=
        linear_forward_s(rows, kv_down, h) + linear_forward_s(rows, kv_up, mla.kv_lora_rank);
    cost.backward.gemm_s +=
        linear_backward_s(rows, kv_down, h) + linear_backward_s(rows, kv_up, mla.kv_lora_rank);
    core.kv_heads = core.heads;
    core.qk_head_dim = qk;
    core.v_head_dim = mla.v_head_dim;
    output_inner = heads * mla.v_head_dim;
  } else {
    const std::int64_t q = model_.num_attention_heads * model_.kv_channels / tp;
    const std::int64_t kv = core.kv_heads * model_.kv_channels;
    cost.forward.gemm_s += linear_forward_s(rows, q + 2 * kv, h);
    cost.backward.gemm_s += linear_backward_s(rows, q + 2 * kv, h);
    output_inner = q;
  }
  cost.forward.gemm_s += linear_forward_s(rows, h, output_inner);
  cost.backward.gemm_s += linear_backward_s(rows, h, output_inner);

  const bool all_to_all_cp = config_.cp > 1 && options_.cp_comm_type == CpCommType::a2a;
  const double cp = as_double(config_.cp);
  double attention_forward_s = 0;
  double attention_backward_s = 0;
  if (all_to_all_cp) {
    // a2a context parallelism (DeepSpeed-Ulysses style, TE cp_comm_type "a2a"): an all-to-all
    // over CP turns the sequence shard of every head into the whole sequence of 1/CP of the heads;
    // attention runs on that; a second all-to-all turns the output back.
    AttentionShape whole = core;
    whole.heads = core.heads / config_.cp;
    whole.kv_heads = std::max<std::int64_t>(1, core.kv_heads / config_.cp);
    whole.seq_q = training_.seq_length;
    whole.seq_kv = training_.seq_length;
    attention_forward_s = context_.compute().attention_forward_time_s(whole);
    attention_backward_s = context_.compute().attention_backward_time_s(whole);
    const double tokens = as_double(training_.micro_batch_size * core.seq_q);
    const double qkv_bytes = tokens *
                             as_double(core.heads * core.qk_head_dim +
                                       core.kv_heads * (core.qk_head_dim + core.v_head_dim)) *
                             kBf16Bytes;
    const double output_bytes = tokens * as_double(core.heads * core.v_head_dim) * kBf16Bytes;
    const CollectiveCostModel& collectives = context_.collectives();
    const double a2a_s = collectives.time_s(CollectiveKind::all_to_all, groups_.cp, qkv_bytes) +
                         collectives.time_s(CollectiveKind::all_to_all, groups_.cp, output_bytes);
    cost.forward.cp_comm_s += a2a_s;
    cost.backward.cp_comm_s += a2a_s; // the gradients take the same two all-to-alls back
  } else {
    // p2p context parallelism (TE's ring, load-balanced): each rank holds 2 chunks of s/(2·CP)
    // and computes 1/CP of the causal work, i.e. CP causal blocks of its own size.
    attention_forward_s = context_.compute().attention_forward_time_s(core) * cp;
    attention_backward_s = context_.compute().attention_backward_time_s(core) * cp;
    if (config_.cp > 1) {
      // CP-1 ring steps each pass this rank's K and V on; TE overlaps each step with the
      // attention of the previous block, so only what outlasts the compute is exposed.
      const double kv_bytes = as_double(training_.micro_batch_size * core.seq_q * core.kv_heads *
                                        (core.qk_head_dim + core.v_head_dim)) *
                              kBf16Bytes;
      const double step_s =
          context_.collectives().time_s(CollectiveKind::send_recv, groups_.cp, kv_bytes);
      const double steps = cp - 1;
      cost.forward.cp_comm_s += std::max(0.0, steps * step_s - attention_forward_s * steps / cp);
      // Backward passes K, V and their gradients around the ring.
      cost.backward.cp_comm_s +=
          std::max(0.0, steps * 2 * step_s - attention_backward_s * steps / cp);
    }
  }
  cost.forward.attention_s += attention_forward_s;
  cost.backward.attention_s += attention_backward_s;
  if (options_.recompute == Recompute::selective) {
    cost.backward.attention_s += attention_forward_s; // Megatron's default module: core_attn
  }
  return cost;
}

PassCost LayerCostModel::tensor_parallel_mlp(std::int64_t ffn) const {
  const std::int64_t h = model_.hidden_size;
  const std::int64_t rows = tokens_per_rank_;
  const std::int64_t ffn_local = ffn / config_.tp;
  const std::int64_t gated = model_.activation == Activation::swiglu ? 2 : 1;
  PassCost cost;
  cost.forward.gemm_s +=
      linear_forward_s(rows, gated * ffn_local, h) + linear_forward_s(rows, h, ffn_local);
  cost.backward.gemm_s +=
      linear_backward_s(rows, gated * ffn_local, h) + linear_backward_s(rows, h, ffn_local);
  // The activation reads the fc1 output and writes its input to fc2.
  const double activation_bytes = as_double(rows * (gated + 1) * ffn_local) * kBf16Bytes;
  cost.forward.memory_bound_s += memory_s(activation_bytes);
  cost.backward.memory_bound_s += memory_s(activation_bytes * 1.5);
  const PhaseCost tp_comm = tp_gather_and_scatter(as_double(rows * h) * kBf16Bytes);
  cost.forward += tp_comm;
  cost.backward += tp_comm;
  return cost;
}

PassCost LayerCostModel::routed_experts() const {
  const MoeSpec& moe = model_.moe;
  const std::int64_t h = model_.hidden_size;
  const std::int64_t tokens = sequence_shard_;
  const std::int64_t topk = moe.router_topk;
  const std::int64_t local_experts = moe.num_experts / config_.ep;
  const std::int64_t ffn_local = moe.ffn_hidden_size / config_.etp;
  const std::int64_t gated = model_.activation == Activation::swiglu ? 2 : 1;
  const CollectiveCostModel& collectives = context_.collectives();
  PassCost cost;

  // Megatron moe_utils.get_capacity: per-rank capacity ceil(T·k/E·cf). Balanced routing sends
  // T·k/E rows to each expert; dropping caps that at capacity and padding fills it up to it.
  const double rows_per_expert_balanced = as_double(tokens * topk) / as_double(moe.num_experts);
  double rows_per_expert_sent = rows_per_expert_balanced * expert_load_factor_;
  if (options_.capacity_factor) {
    const double capacity = std::ceil(rows_per_expert_balanced * *options_.capacity_factor);
    rows_per_expert_sent =
        options_.pad_to_capacity ? capacity : std::min(rows_per_expert_sent, capacity);
  }
  // Rows this rank sends (one copy per chosen expert, local ones included) and the rows its
  // experts compute after the ETP all-gather.
  const double rows_sent = rows_per_expert_balanced * as_double(moe.num_experts);
  const double rows_computed =
      rows_per_expert_sent * as_double(moe.num_experts) * as_double(config_.etp);
  const std::int64_t rows_per_local_expert =
      static_cast<std::int64_t>(std::ceil(rows_computed / as_double(local_experts)));

  // Router: logits GEMM and softmax/top-k; then permute and unpermute copy every routed row.
  const double shard_bytes = as_double(tokens * h) * kBf16Bytes;
  cost.forward.gemm_s +=
      context_.compute().gemm_time_s(tokens, moe.num_experts, h, GemmPrecision::bf16);
  cost.backward.gemm_s +=
      context_.compute().gemm_time_s(tokens, h, moe.num_experts, GemmPrecision::bf16) +
      context_.compute().gemm_time_s(h, moe.num_experts, tokens, GemmPrecision::bf16,
                                     kWeightGradientOutput);
  // The load-balancing loss sums tokens per expert over the sequence's shards (TP×CP) before the
  // layer goes on: an all-reduce of one fp32 count per expert, all latency.
  cost.forward.tp_comm_s += collectives.time_s(CollectiveKind::all_reduce, groups_.tp_cp,
                                               as_double(moe.num_experts) * kFp32Bytes);
  // moe_utils.permute gathers the routed rows; unpermute weights each row by its probability
  // and scatter-adds the k copies back (a pass each); backward adds the probabilities' gradient,
  // a row-wise dot product that reads the rows and their gradients once more.
  const double permute_bytes = rows_sent * as_double(h) * kBf16Bytes * 2;
  const double router_bytes = as_double(tokens * moe.num_experts) * kFp32Bytes * 3;
  cost.forward.memory_bound_s += memory_s(shard_bytes * 2) + // pre-MLP norm
                                 memory_s(router_bytes, router_forward_kernels(options_)) +
                                 memory_s(permute_bytes) * 3 + memory_s(shard_bytes * 3);
  cost.backward.memory_bound_s += memory_s(shard_bytes * 3) +
                                  memory_s(router_bytes, kRouterBackwardKernels) +
                                  memory_s(permute_bytes) * 4 + memory_s(shard_bytes * 2);

  const double token_bytes = as_double(h) * kBf16Bytes;
  // Split sizes depend on the routing unless every expert is padded to capacity: the dispatcher
  // copies the token counts to the host before it can size the all-to-all-v (or slice experts).
  const bool expert_parallel = config_.ep * config_.etp > 1;
  if (expert_parallel && !options_.pad_to_capacity)
    cost.forward.host_sync_s += kHostSyncGap_s;
  if (options_.dispatcher == Dispatcher::alltoall) {
    // token_dispatcher.py MoEAlltoAllTokenDispatcher: A2A(EP) tokens and probs, AG(ETP), experts,
    // RS(ETP), A2A(EP) back. The busiest rank receives load_factor × the mean.
    // Only the rows for experts on other EP ranks leave this one: (EP−1)/EP of them, balanced.
    const double remote_share = as_double(config_.ep - 1) / as_double(config_.ep);
    const double a2a_bytes = rows_sent * token_bytes * remote_share;
    const double probs_bytes = rows_sent * kFp32Bytes * remote_share;
    const double load = options_.capacity_factor ? rows_per_expert_sent / rows_per_expert_balanced
                                                 : expert_load_factor_;
    const double dispatch_s = collectives.all_to_all_time_s(groups_.ep, a2a_bytes, load) +
                              collectives.all_to_all_time_s(groups_.ep, probs_bytes, load);
    const double combine_s = collectives.all_to_all_time_s(groups_.ep, a2a_bytes, load);
    cost.forward.ep_comm_s += dispatch_s + combine_s;
    cost.backward.ep_comm_s += dispatch_s + combine_s;
    if (expert_parallel) {
      // preprocess: all-gather of every rank's tokens-per-expert counts over ETP·EP.
      cost.forward.ep_comm_s +=
          collectives.time_s(CollectiveKind::all_gather, groups_.etp_ep,
                             as_double(config_.etp * config_.ep * moe.num_experts) * kInt64Bytes);
    }
    if (local_experts > 1 && config_.ep > 1) {
      // sort_chunks_by_idxs: received rows arrive grouped by source rank and are reordered by
      // local expert before the experts and back after them (and again in backward).
      const double sort_s = memory_s(rows_computed * token_bytes * 2) * 2;
      cost.forward.memory_bound_s += sort_s;
      cost.backward.memory_bound_s += sort_s;
    }
    if (config_.etp > 1) {
      const double gathered = rows_computed * token_bytes;
      const double etp_s =
          collectives.time_s(CollectiveKind::all_gather, groups_.etp, gathered) +
          collectives.time_s(CollectiveKind::reduce_scatter, groups_.etp, gathered);
      cost.forward.etp_comm_s += etp_s;
      cost.backward.etp_comm_s += etp_s;
    }
  } else {
    // MoEAllGatherTokenDispatcher: every rank gathers the whole ETP·EP group's tokens and probs
    // and reduce-scatters the combined output back.
    const double group_size = as_double(config_.etp * config_.ep);
    const double gathered =
        group_size * as_double(tokens) * (token_bytes + as_double(moe.num_experts) * kBf16Bytes);
    const double comm_s = collectives.time_s(CollectiveKind::all_gather, groups_.etp_ep, gathered) +
                          collectives.time_s(CollectiveKind::reduce_scatter, groups_.etp_ep,
                                             group_size * as_double(tokens) * token_bytes);
    cost.forward.ep_comm_s += comm_s;
    cost.backward.ep_comm_s += comm_s;
  }

  // Grouped expert GEMMs (--moe-grouped-gemm): fc1 [rows, h]x[h, gated·F/ETP], fc2 back to h.
  cost.forward.gemm_s +=
      grouped_linear_forward_s(local_experts, rows_per_local_expert, gated * ffn_local, h) +
      grouped_linear_forward_s(local_experts, rows_per_local_expert, h, ffn_local);
  cost.backward.gemm_s +=
      grouped_linear_backward_s(local_experts, rows_per_local_expert, gated * ffn_local, h) +
      grouped_linear_backward_s(local_experts, rows_per_local_expert, h, ffn_local);
  const double activation_bytes = rows_computed * as_double((gated + 1) * ffn_local) * kBf16Bytes;
  cost.forward.memory_bound_s += memory_s(activation_bytes);
  cost.backward.memory_bound_s += memory_s(activation_bytes * 1.5);
  return cost;
}

PassCost LayerCostModel::dense_layer() const {
  PassCost cost = attention_block();
  cost += tensor_parallel_mlp(model_.ffn_hidden_size);
  // The pre-MLP norm and the residual add around the MLP (the MoE path counts its own).
  const double shard_bytes = as_double(sequence_shard_ * model_.hidden_size) * kBf16Bytes;
  cost.forward.memory_bound_s += memory_s(shard_bytes * 2) + memory_s(shard_bytes * 3);
  cost.backward.memory_bound_s += memory_s(shard_bytes * 3) + memory_s(shard_bytes * 2);
  if (options_.recompute == Recompute::full)
    cost.backward += cost.forward;
  return cost;
}

PassCost LayerCostModel::moe_layer() const {
  PassCost cost = attention_block();
  cost += routed_experts();
  if (model_.moe.shared_expert_intermediate_size > 0) {
    cost += tensor_parallel_mlp(model_.moe.shared_expert_intermediate_size);
  }
  if (options_.recompute == Recompute::full)
    cost.backward += cost.forward;
  return cost;
}

PassCost LayerCostModel::decoder_layer(std::int64_t layer) const {
  return model_.is_moe_layer(layer) ? moe_layer() : dense_layer();
}

PassCost LayerCostModel::embedding() const {
  // VocabParallelEmbedding: a lookup, then a reduce-scatter over TP into the sequence shard.
  const double bytes = as_double(tokens_per_rank_ * model_.hidden_size) * kBf16Bytes;
  PassCost cost;
  cost.forward.memory_bound_s = memory_s(bytes * 2);
  cost.backward.memory_bound_s = memory_s(bytes * 2);
  if (config_.tp > 1) {
    const double rs_s =
        context_.collectives().time_s(CollectiveKind::reduce_scatter, groups_.tp, bytes);
    cost.forward.tp_comm_s = rs_s;
    cost.backward.tp_comm_s = rs_s;
  }
  return cost;
}

PassCost LayerCostModel::output_layer() const {
  const std::int64_t rows = tokens_per_rank_;
  const std::int64_t vocab_local = padded_vocab_size(model_.vocab_size, config_.tp) / config_.tp;
  PassCost cost;
  // Logits in bf16 GEMMs (Megatron keeps the output layer out of fp8), then the vocab-parallel
  // cross entropy over fp32 logits: read, exp, write the gradient.
  cost.forward.gemm_s =
      context_.compute().gemm_time_s(rows, vocab_local, model_.hidden_size, GemmPrecision::bf16);
  cost.backward.gemm_s =
      context_.compute().gemm_time_s(rows, model_.hidden_size, vocab_local, GemmPrecision::bf16) +
      context_.compute().gemm_time_s(model_.hidden_size, vocab_local, rows, GemmPrecision::bf16,
                                     kWeightGradientOutput);
  const double logits_bytes = as_double(rows * vocab_local) * kFp32Bytes;
  cost.forward.memory_bound_s = memory_s(logits_bytes * 3);
  cost.backward.memory_bound_s = memory_s(logits_bytes * 2);
  // The final norm, and the SP all-gather of the output layer's input (reduce-scatter backward).
  const double shard_bytes = as_double(sequence_shard_ * model_.hidden_size) * kBf16Bytes;
  cost.forward.memory_bound_s += memory_s(shard_bytes * 2);
  cost.backward.memory_bound_s += memory_s(shard_bytes * 3);
  if (config_.tp > 1) {
    const double bytes = as_double(rows * model_.hidden_size) * kBf16Bytes;
    cost.forward.tp_comm_s =
        context_.collectives().time_s(CollectiveKind::all_gather, groups_.tp, bytes);
    cost.backward.tp_comm_s =
        context_.collectives().time_s(CollectiveKind::reduce_scatter, groups_.tp, bytes);
  }
  return cost;
}

double LayerCostModel::pipeline_message_bytes() const {
  // Megatron's p2p tensor shape: [s/CP/(TP with SP), mbs, h].
  return as_double(sequence_shard_ * model_.hidden_size) * kBf16Bytes;
}

} // namespace foldplan
