// Per-GPU memory: parameters and optimizer state by pipeline stage and sharding group, activations
// per layer from what Megatron-Core and Transformer Engine save for backward, and the chunks in
// flight under Megatron's pipeline schedules.
#include "costmodel/memory_model.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "core/units.hpp"
#include "models/parameter_count.hpp"
#include "models/vocab_padding.hpp"
#include "parallel/layer_placement.hpp"

namespace foldplan {
namespace {

using units::kBf16Bytes;
using units::kFp32Bytes;
using units::kInt64Bytes;

constexpr double kBoolBytes = 1;
constexpr double kMiB = 1024.0 * 1024.0;

// Mixed-precision Adam under the distributed optimizer (Megatron docs/user-guide/features/
// dist_optimizer.md, "bf16 / fp32" row: 6 + 12/d bytes a parameter): every rank holds the bf16
// parameter and its fp32 main gradient (--accumulate-allreduce-grads-in-fp32 is Megatron's default
// with --bf16); fp32 master weight, Adam m and Adam v are split over the sharding group.
constexpr double kParameterBytes = kBf16Bytes;
constexpr double kMainGradientBytes = kFp32Bytes;
constexpr double kOptimizerStateBytes = 3 * kFp32Bytes;

// Memory outside PyTorch's allocator, and the allocator's own waste. Measured, not fitted: with
// PyTorch 2.11 (CUDA 13.0, NCCL 2.28.9), the device's used memory minus
// torch.cuda.memory_reserved() was 619 MiB after the first CUDA tensor on an H100 and on an H200;
// under torchrun on two NVLink-connected H200s (NCCL_NVLS_ENABLE=0), after one all_reduce,
// all_gather_into_tensor, reduce_scatter_tensor and all_to_all_single of 32 MiB on each group, the
// first (world) communicator added 2272 MiB and each further two-rank group 672 MiB (channel
// buffers for the ring and p2p protocols). Groups of 8 ranks or across nodes connect to more peers
// and may cost more; groups that only carry scalars (loss averaging, grad norm) are not counted.
constexpr double kCudaContextBytes = 619 * kMiB;
constexpr double kNcclFirstCommunicatorBytes = 2272 * kMiB;
constexpr double kNcclCommunicatorBytes = 672 * kMiB;
// An allowance, not a measurement: the caching allocator rounds blocks above 1 MiB up to 2 MiB
// multiples and keeps freed blocks cached per stream; with expandable_segments (the setting the
// Megatron MoE README recommends) the waste stays small. 1 GiB covers some hundreds of such
// remnants and the optimizer step's temporaries (grad-norm and Adam scratch).
constexpr double kAllocatorFragmentationBytes = 1024 * kMiB;

// Virtual stages a rank may hold; the schedule scan keeps one number a chunk on the stack.
constexpr std::int64_t kMaxVirtualStages = 256;

double as_double(std::int64_t value) {
  return static_cast<double>(value);
}

// Parameters of a stage, grouped by how they are sharded over the ranks of the stage.
struct ShardedParameters {
  double tensor_parallel = 0; // split over TP: attention, dense MLP, shared experts, vocab tables
  double replicated = 0;      // whole on every rank: norms, router, MLA's down projections
  double expert = 0;          // routed experts, split over ETP·EP

  void add(const ShardedParameters& other, double times) {
    tensor_parallel += times * other.tensor_parallel;
    replicated += times * other.replicated;
    expert += times * other.expert;
  }
};

std::int64_t norm_weights_per_channel(const ModelSpec& model) {
  return norm_parameters(model) / model.hidden_size;
}

// MLA's parameters that every TP rank holds whole: Megatron builds linear_q_down_proj and
// linear_kv_down_proj as TELinear with parallel_mode="duplicated" (multi_latent_attention.py),
// and the q/kv layernorms on their low ranks are not split. The up and output projections are.
double mla_replicated_parameters(const ModelSpec& model) {
  if (!model.mla)
    return 0;
  const MlaSpec& mla = *model.mla;
  const double h = as_double(model.hidden_size);
  const double norm = as_double(norm_weights_per_channel(model));
  const double q_lora = as_double(mla.q_lora_rank);
  const double kv_lora = as_double(mla.kv_lora_rank);
  const double query_down = mla.q_lora_rank == 0 ? 0 : h * q_lora + norm * q_lora;
  const double key_value_down = h * (kv_lora + as_double(mla.qk_pos_emb_head_dim)) + norm * kv_lora;
  return query_down + key_value_down;
}

ShardedParameters shard_layer(const LayerParameters& layer, double mla_replicated) {
  ShardedParameters sharded;
  sharded.tensor_parallel =
      as_double(layer.attention) - mla_replicated +
      as_double(layer.dense_mlp + layer.shared_experts + layer.mtp_projection);
  sharded.replicated = as_double(layer.norms + layer.router) + mla_replicated;
  sharded.expert = as_double(layer.routed_experts);
  return sharded;
}

// ---- Activations -------------------------------------------------------------------------------

// The shapes every activation term is built from, for one micro-batch on one GPU.
struct ActivationShape {
  double h = 0;
  double tp = 1;
  double etp = 1;
  // s·b/(TP·CP): tokens of a rank in the sequence-parallel region (norms, residual stream,
  // router); sequence parallelism is on whenever TP > 1.
  double tokens_sequence_parallel = 0;
  // s·b/CP: tokens inside a tensor-parallel region (all-gathered), whose features are split by TP.
  double tokens_tensor_parallel = 0;
  double padded_vocab = 0;
  // fc1's output width over the MLP's intermediate size F: 2 for SwiGLU (gate and up projections),
  // 1 for GeLU. The activation function's output, fc2's input, is F wide either way.
  double fc1_output_per_ffn = 1;
};

ActivationShape activation_shape(const ModelSpec& model, const ParallelConfig& config,
                                 const TrainingShape& training) {
  ActivationShape shape;
  shape.h = as_double(model.hidden_size);
  shape.tp = as_double(config.tp);
  shape.etp = as_double(config.etp);
  const double tokens = as_double(training.seq_length) * as_double(training.micro_batch_size);
  shape.tokens_tensor_parallel = tokens / as_double(config.cp);
  shape.tokens_sequence_parallel = shape.tokens_tensor_parallel / shape.tp;
  shape.padded_vocab = as_double(padded_vocab_size(model.vocab_size, config.tp));
  shape.fc1_output_per_ffn = model.activation == Activation::swiglu ? 2 : 1;
  return shape;
}

// An MLP of intermediate width `ffn` split `split` ways, on `rows` rows: fc1's output (saved by
// the activation function, TE/Megatron bias_swiglu or gelu) and the activation's output (saved by
// fc2 as its GEMM input), bf16.
double mlp_intermediate_bytes(const ActivationShape& shape, double rows, double ffn, double split) {
  return kBf16Bytes * rows * (shape.fc1_output_per_ffn + 1) * ffn / split;
}

// A norm whose output feeds linears: its input (saved by the norm for backward) and its output
// (saved by the following linear; with sequence parallelism TE saves the local shard and
// all-gathers it again in backward), both [s·b/(TP·CP), h] bf16. Per-token fp32 statistics
// (rsigma) are left out: 4 bytes against 2h.
double norm_pair_bytes(const ActivationShape& shape) {
  return 2 * kBf16Bytes * shape.tokens_sequence_parallel * shape.h;
}

struct BlockActivation {
  double saved = 0;       // kept until the layer's backward
  double working_set = 0; // alive only while this block runs forward or backward
};

// Self-attention with flash/cuDNN fused attention (no s² score matrix is ever stored). Saved, per
// TE's FusedAttention and Megatron's attention.py: the input norm pair; Q and K after RoPE (the
// fused RoPE kernel saves only its frequencies) and V, [s·b/CP, heads·d/TP]; the attention output,
// kept once for both the attention kernel and the output projection's GEMM input; and the
// softmax log-sum-exp [b, heads/TP, s/CP] fp32. Selective recompute (Megatron's default
// recompute_modules ["core_attn"]) checkpoints the core attention: its inputs Q, K, V and its
// output stay alive through their other users, so only the softmax statistics go.
BlockActivation attention_activation(const ModelSpec& model, const ActivationShape& shape,
                                     Recompute recompute) {
  const double tokens = shape.tokens_tensor_parallel;
  const double heads_per_rank = as_double(model.num_attention_heads) / shape.tp;
  BlockActivation block;
  double query_key_value = 0; // Q, K, V and the attention output, bf16
  if (model.mla) {
    // MLA (multi_latent_attention.py): the duplicated down projections read the sequence-parallel
    // input, so the compressed q [T_sp, q_lora] and kv [T_sp, kv_lora + rope] are saved sharded
    // (as the q/kv layernorms' inputs) together with the normed copies the column-parallel up
    // projections save; then Q, K of head dim qk + rope, V and the output of head dim v.
    const MlaSpec& mla = *model.mla;
    const double compressed_query = as_double(2 * mla.q_lora_rank);
    const double compressed_key_value = as_double(2 * mla.kv_lora_rank + mla.qk_pos_emb_head_dim);
    block.saved +=
        kBf16Bytes * shape.tokens_sequence_parallel * (compressed_query + compressed_key_value);
    const double query_head = as_double(mla.qk_head_dim + mla.qk_pos_emb_head_dim);
    const double value_head = as_double(mla.v_head_dim);
    query_key_value = kBf16Bytes * tokens * heads_per_rank * (2 * query_head + 2 * value_head);
  } else {
    // GQA: K and V have num_query_groups heads; with fewer groups than TP each rank keeps one.
    const double head_dim = as_double(model.kv_channels);
    const double groups_per_rank = std::max(1.0, as_double(model.num_query_groups) / shape.tp);
    query_key_value = kBf16Bytes * tokens * head_dim * (2 * heads_per_rank + 2 * groups_per_rank);
  }
  const double softmax_statistics = kFp32Bytes * tokens * heads_per_rank;
  block.saved += norm_pair_bytes(shape) + query_key_value;
  if (recompute == Recompute::none)
    block.saved += softmax_statistics;
  // Transients: the all-gathered norm output that the QKV GEMM reads (TP > 1), and in backward the
  // gradients of Q, K, V and the output, as large as the tensors themselves.
  const double gathered_input = shape.tp > 1 ? kBf16Bytes * tokens * shape.h : 0;
  block.working_set = std::max(gathered_input, query_key_value);
  return block;
}

// Dense MLP (TELayerNormColumnParallelLinear fc1 with the pre-MLP norm fused in, activation,
// RowParallel fc2): the norm pair and the two intermediates [s·b/CP, (2)F/TP].
BlockActivation dense_mlp_activation(const ModelSpec& model, const ActivationShape& shape) {
  const double intermediate = mlp_intermediate_bytes(shape, shape.tokens_tensor_parallel,
                                                     as_double(model.ffn_hidden_size), shape.tp);
  BlockActivation block;
  block.saved = norm_pair_bytes(shape) + intermediate;
  // Transients: fc1's all-gathered input (TP > 1), and in backward the intermediates' gradients.
  const double gathered_input =
      shape.tp > 1 ? kBf16Bytes * shape.tokens_tensor_parallel * shape.h : 0;
  block.working_set = std::max(gathered_input, intermediate);
  return block;
}

// The per-token rows a rank sends into the dispatcher (permuted tokens): T·k dropless, E·capacity
// when padded, at most that when dropping.
double dispatched_rows(const ModelSpec& model, const PlanOptions& options, double tokens) {
  const double topk = as_double(model.moe.router_topk);
  const double experts = as_double(model.moe.num_experts);
  if (!options.capacity_factor)
    return tokens * topk;
  // Megatron moe_utils.get_capacity(num_tokens = T·k): ceil(T·k / E · cf), decided per rank.
  const double capacity = std::ceil(tokens * topk / experts * *options.capacity_factor);
  return options.pad_to_capacity ? experts * capacity : std::min(tokens * topk, experts * capacity);
}

struct MoeActivation {
  BlockActivation norm_and_shared; // pre-MLP norm and shared experts ("mlp")
  BlockActivation routed;          // router, dispatcher and routed experts
};

// An MoE layer (moe_layer.py with the alltoall or allgather dispatcher, TEGroupedMLP experts):
// - the pre-MLP norm (a separate TENorm in MoE layers): its input, and its output, which the
//   router's gating GEMM, the shared experts' fc1 and the permutation all read (saved once);
// - router (router.py, topk_softmax_with_capacity): fp32 scores and top-k probabilities [T, E]
//   and the routing map (bool) [T, E], the top-k values (fp32) and indices (int64) [T, k];
// - the routed experts on the rows R this rank receives (routed_expert_rows): fc1's input [R, H]
//   (the grouped GEMM keeps it for wgrad), fc1's output [R, (2)F/ETP] and the activation output
//   [R, F/ETP]; and the permuted probabilities [R] fp32 that the weighted activation saves
//   (probabilities are applied inside moe_act, so unpermute saves nothing). This is the reference's
//   code-derived b·T·k·(ETP·H + 3F) with b = 2 bytes, times the imbalance;
// - shared experts (SharedExpertMLP, on the attention TP group with SP): the two intermediates
//   [s·b/CP, (2)Fs/TP].
// The permutation and the all-to-all/all-gather save no data (their backward is the inverse index
// map), so the dispatcher's buffers are transients: the permuted tokens sent, and at most two
// expert-side buffers of R rows at once (received rows and their expert-sorted copy on dispatch;
// fc2's output and its unsorted copy on combine). The allgather dispatcher instead gathers all
// ETP·EP·T tokens (hidden, fp32 probabilities and routing map) into one buffer.
MoeActivation moe_activation(const ModelSpec& model, const ParallelConfig& config,
                             const PlanOptions& options, const ActivationShape& shape,
                             double routed_rows) {
  const double tokens = shape.tokens_sequence_parallel;
  const double experts = as_double(model.moe.num_experts);
  const double topk = as_double(model.moe.router_topk);
  MoeActivation moe;

  const double shared =
      mlp_intermediate_bytes(shape, shape.tokens_tensor_parallel,
                             as_double(model.moe.shared_expert_intermediate_size), shape.tp);
  moe.norm_and_shared.saved = norm_pair_bytes(shape) + shared;
  const double gathered_input =
      shape.tp > 1 && shared > 0 ? kBf16Bytes * shape.tokens_tensor_parallel * shape.h : 0;
  moe.norm_and_shared.working_set = std::max(gathered_input, shared);

  const double router =
      tokens * (experts * (2 * kFp32Bytes + kBoolBytes) + topk * (kFp32Bytes + kInt64Bytes));
  const double expert_ffn = as_double(model.moe.ffn_hidden_size);
  const double expert_intermediate =
      mlp_intermediate_bytes(shape, routed_rows, expert_ffn, shape.etp);
  const double expert_input = kBf16Bytes * routed_rows * shape.h;
  moe.routed.saved = router + expert_input + expert_intermediate + kFp32Bytes * routed_rows;

  double dispatch_buffers = 0;
  if (options.dispatcher == Dispatcher::alltoall) {
    dispatch_buffers =
        kBf16Bytes * shape.h * (dispatched_rows(model, options, tokens) + 2 * routed_rows);
  } else {
    const double gathered_tokens = as_double(config.etp * config.ep) * tokens;
    dispatch_buffers =
        gathered_tokens * (kBf16Bytes * shape.h + experts * (kFp32Bytes + kBoolBytes)) +
        kBf16Bytes * shape.h * routed_rows;
  }
  // In backward the experts' intermediate gradients are as large as the intermediates.
  moe.routed.working_set = std::max(dispatch_buffers, expert_intermediate);
  return moe;
}

// Saved activations and working set of one dense or MoE decoder layer under options.recompute.
ActivationBytes layer_activation(const ModelSpec& model, const ParallelConfig& config,
                                 const PlanOptions& options, const ActivationShape& shape,
                                 bool is_moe_layer, double routed_rows) {
  const BlockActivation attention = attention_activation(model, shape, options.recompute);
  ActivationBytes layer;
  layer.attention = attention.saved;
  double working_set = attention.working_set;
  if (is_moe_layer) {
    const MoeActivation moe = moe_activation(model, config, options, shape, routed_rows);
    layer.mlp = moe.norm_and_shared.saved;
    layer.routed_experts = moe.routed.saved;
    working_set = std::max({working_set, moe.norm_and_shared.working_set, moe.routed.working_set});
  } else {
    const BlockActivation mlp = dense_mlp_activation(model, shape);
    layer.mlp = mlp.saved;
    working_set = std::max(working_set, mlp.working_set);
  }
  if (options.recompute == Recompute::full) {
    // Full recompute (--recompute-method uniform, one layer a checkpoint): each layer keeps only
    // its input [s·b/(TP·CP), h] (already sharded by SP); in backward one layer's forward runs
    // again, so that layer's full activations join the working set.
    PlanOptions without_recompute = options;
    without_recompute.recompute = Recompute::none;
    const ActivationBytes recomputed =
        layer_activation(model, config, without_recompute, shape, is_moe_layer, routed_rows);
    layer = ActivationBytes{};
    layer.layer_checkpoints = kBf16Bytes * shape.tokens_sequence_parallel * shape.h;
    layer.working_set = recomputed.total();
    return layer;
  }
  layer.working_set = working_set;
  return layer;
}

// The output layer and cross-entropy on the last stage, for one micro-batch: the final norm pair,
// the logits that vocab_parallel_cross_entropy turns into fp32 and keeps (softmax) for backward
// [s·b/CP, V/TP], and the int64 labels. The bf16 logits the output GEMM writes before the cast are
// a transient.
double loss_activation_bytes(const ActivationShape& shape) {
  return norm_pair_bytes(shape) +
         kFp32Bytes * shape.tokens_tensor_parallel * shape.padded_vocab / shape.tp +
         kInt64Bytes * shape.tokens_tensor_parallel;
}

// One MTP layer beyond its decoder layer (multi_token_prediction.py): the shifted token ids
// (int64), the enorm and hnorm inputs and the concatenation [T_sp, 2h] that eh_proj saves, and its
// own output layer and loss.
double mtp_extra_activation_bytes(const ActivationShape& shape) {
  return kInt64Bytes * shape.tokens_tensor_parallel +
         4 * kBf16Bytes * shape.tokens_sequence_parallel * shape.h + loss_activation_bytes(shape);
}

void add_scaled(ActivationBytes& sum, const ActivationBytes& part, double times) {
  sum.attention += times * part.attention;
  sum.mlp += times * part.mlp;
  sum.routed_experts += times * part.routed_experts;
  sum.layer_checkpoints += times * part.layer_checkpoints;
  sum.embedding_and_loss += times * part.embedding_and_loss;
}

// ---- Pipeline schedule -------------------------------------------------------------------------

// Forward steps that ran chunk `chunk` among the first `steps` of a rank. Megatron's interleaved
// schedule (schedules.py get_model_chunk_id, microbatch_group_size_per_vp_stage = PP) runs chunk
// (k mod (PP·VPP)) / PP at virtual step k; with VPP = 1 every step is chunk 0.
std::int64_t forward_steps_of_chunk(std::int64_t steps, std::int64_t chunk, std::int64_t pp,
                                    std::int64_t vpp) {
  const std::int64_t period = pp * vpp;
  return steps / period * pp + std::clamp<std::int64_t>(steps % period - chunk * pp, 0, pp);
}

// Backward steps visit the chunks in reverse order.
std::int64_t backward_steps_of_chunk(std::int64_t steps, std::int64_t chunk, std::int64_t pp,
                                     std::int64_t vpp) {
  return forward_steps_of_chunk(steps, vpp - 1 - chunk, pp, vpp);
}

// Warm-up forward steps before the first backward (schedules.py): PP − r − 1 under 1F1B;
// 2·(PP − r − 1) + (VPP − 1)·PP interleaved; one more with EP overlap (combined 1F1B's
// get_pp_rank_microbatches), which with PP = 1 runs F(i) beside B(i − 1).
std::int64_t warmup_steps(const ParallelConfig& config, std::int64_t pp_rank,
                          bool overlap_moe_expert_parallel_comm) {
  const std::int64_t later_ranks = config.pp - pp_rank - 1;
  std::int64_t warmup =
      config.vpp == 1 ? later_ranks : 2 * later_ranks + (config.vpp - 1) * config.pp;
  if (overlap_moe_expert_parallel_comm)
    ++warmup;
  return warmup;
}

struct InFlight {
  std::int64_t chunks = 0;
  std::array<std::int64_t, kMaxVirtualStages> per_chunk{}; // live micro-batches of each chunk
};

// The live (micro-batch, chunk) pairs at the rank's peak: after W warm-up steps each steady step
// runs one forward and then one backward, so W + 1 chunks are alive before each backward; which
// chunks they are cycles with period PP·VPP, and the peak is the heaviest of those mixes.
InFlight peak_in_flight(const ParallelConfig& config, std::int64_t num_micro_batches,
                        std::int64_t pp_rank, bool overlap,
                        const std::array<double, kMaxVirtualStages>& chunk_bytes) {
  const std::int64_t pp = config.pp;
  const std::int64_t vpp = config.vpp;
  const std::int64_t total = num_micro_batches * vpp;
  const std::int64_t warmup = warmup_steps(config, pp_rank, overlap);
  InFlight in_flight;
  if (warmup >= total) {
    in_flight.chunks = total;
    for (std::int64_t chunk = 0; chunk < vpp; ++chunk)
      in_flight.per_chunk[chunk] = num_micro_batches;
    return in_flight;
  }
  in_flight.chunks = warmup + 1;
  const bool uniform = std::all_of(chunk_bytes.begin(), chunk_bytes.begin() + vpp,
                                   [&](double bytes) { return bytes == chunk_bytes[0]; });
  const std::int64_t steady_steps = total - warmup;
  const std::int64_t steps_to_scan = uniform ? 1 : std::min(steady_steps, pp * vpp);
  double peak_bytes = -1;
  for (std::int64_t step = 0; step < steps_to_scan; ++step) {
    std::array<std::int64_t, kMaxVirtualStages> live{};
    double bytes = 0;
    for (std::int64_t chunk = 0; chunk < vpp; ++chunk) {
      live[chunk] = forward_steps_of_chunk(warmup + 1 + step, chunk, pp, vpp) -
                    backward_steps_of_chunk(step, chunk, pp, vpp);
      bytes += as_double(live[chunk]) * chunk_bytes[chunk];
    }
    if (bytes > peak_bytes) {
      peak_bytes = bytes;
      in_flight.per_chunk = live;
    }
  }
  return in_flight;
}

// NCCL communicators of more than one rank that carry tensors for this rank: TP, CP, the dense
// gradient group DP×CP, PP, and for MoE EP, ETP and EDP; with tied embeddings and PP > 1 the
// first and last stages also all-reduce the embedding gradient.
std::int64_t data_communicators(const ModelSpec& model, const ParallelConfig& config,
                                std::int64_t pp_rank) {
  std::int64_t count = 0;
  for (const std::int64_t size : {config.tp, config.cp, config.dp * config.cp, config.pp})
    count += size > 1 ? 1 : 0;
  if (model.is_moe()) {
    for (const std::int64_t size : {config.ep, config.etp, config.edp})
      count += size > 1 ? 1 : 0;
  }
  const bool holds_vocab_table = pp_rank == 0 || pp_rank == config.pp - 1;
  if (!model.untie_embeddings_and_output_weights && config.pp > 1 && holds_vocab_table)
    ++count;
  return count;
}

double runtime_allowance_bytes(std::int64_t communicators) {
  const double nccl =
      communicators == 0
          ? 0
          : kNcclFirstCommunicatorBytes + as_double(communicators - 1) * kNcclCommunicatorBytes;
  return kCudaContextBytes + nccl + kAllocatorFragmentationBytes;
}

} // namespace

double ActivationBytes::total() const {
  return attention + mlp + routed_experts + layer_checkpoints + embedding_and_loss + working_set;
}

double MemoryBreakdown::total_bytes() const {
  return weights_bytes + gradients_bytes + optimizer_bytes + activations_bytes + other_bytes;
}

double routed_expert_rows(const ModelSpec& model, const ParallelConfig& config,
                          const TrainingShape& training, const PlanOptions& options,
                          double imbalance_factor) {
  if (!model.is_moe())
    return 0;
  const ActivationShape shape = activation_shape(model, config, training);
  const double tokens = shape.tokens_sequence_parallel;
  const double topk = as_double(model.moe.router_topk);
  const double experts = as_double(model.moe.num_experts);
  // Balanced and dropless, a rank receives T·k rows over EP (alltoall) and ETP times that after
  // the all-gather over ETP (reference §3.5); the hottest rank receives `imbalance` times more.
  const double dropless_rows = shape.etp * tokens * topk * imbalance_factor;
  if (!options.capacity_factor)
    return dropless_rows;
  // With a capacity, each source rank sends at most `capacity` rows per expert, so a local expert
  // gets at most capacity·ETP·EP rows and the E/EP local experts at most E·capacity·ETP; padding
  // makes it exactly that (token_dispatcher.py, drop-and-pad).
  const double capacity = std::ceil(tokens * topk / experts * *options.capacity_factor);
  const double capacity_rows = experts * capacity * shape.etp;
  return options.pad_to_capacity ? capacity_rows : std::min(dropless_rows, capacity_rows);
}

ActivationBytes decoder_layer_activation_bytes(const ModelSpec& model, const ParallelConfig& config,
                                               const TrainingShape& training,
                                               const PlanOptions& options, std::int64_t layer,
                                               double imbalance_factor) {
  const ActivationShape shape = activation_shape(model, config, training);
  const double rows = routed_expert_rows(model, config, training, options, imbalance_factor);
  return layer_activation(model, config, options, shape, model.is_moe_layer(layer), rows);
}

std::int64_t in_flight_chunks(const ParallelConfig& config, std::int64_t num_micro_batches,
                              std::int64_t pp_rank, bool overlap_moe_expert_parallel_comm) {
  const std::int64_t total = num_micro_batches * config.vpp;
  return std::min(total, warmup_steps(config, pp_rank, overlap_moe_expert_parallel_comm) + 1);
}

MemoryBreakdown memory_per_gpu(const ModelSpec& model, const ParallelConfig& config,
                               const TrainingShape& training, const PlanOptions& options,
                               std::int64_t pp_rank, double imbalance_factor,
                               OptimizerSharding sharding) {
  if (pp_rank < 0 || pp_rank >= config.pp) {
    throw std::invalid_argument(
        fmt::format("memory_per_gpu: pp_rank {} is outside [0, {})", pp_rank, config.pp));
  }
  if (!(imbalance_factor >= 1.0)) {
    throw std::invalid_argument(
        fmt::format("memory_per_gpu: imbalance factor {} is below 1", imbalance_factor));
  }
  if (config.vpp > kMaxVirtualStages) {
    throw std::invalid_argument(
        fmt::format("memory_per_gpu: vpp {} is above {}", config.vpp, kMaxVirtualStages));
  }
  const bool first_stage = pp_rank == 0;
  const bool last_stage = pp_rank == config.pp - 1;
  const ActivationShape shape = activation_shape(model, config, training);
  const double routed_rows = routed_expert_rows(model, config, training, options, imbalance_factor);
  const double mla_replicated = mla_replicated_parameters(model);

  // Per kind of layer, once: parameters and one micro-batch's activations.
  const std::int64_t first_moe_layer = model.first_moe_layer();
  const std::int64_t first_dense_layer = model.first_dense_layer();
  ShardedParameters dense_layer_parameters, moe_layer_parameters;
  ActivationBytes dense_layer, moe_layer;
  if (first_dense_layer >= 0) {
    dense_layer_parameters =
        shard_layer(decoder_layer_parameters(model, first_dense_layer), mla_replicated);
    dense_layer = layer_activation(model, config, options, shape, false, routed_rows);
  }
  if (first_moe_layer >= 0) {
    moe_layer_parameters =
        shard_layer(decoder_layer_parameters(model, first_moe_layer), mla_replicated);
    moe_layer = layer_activation(model, config, options, shape, true, routed_rows);
  }

  // What each virtual chunk of this rank holds. The embedding sits on chunk 0 of the first stage;
  // the final norm, output layer, loss and MTP layers on the last chunk of the last stage.
  ShardedParameters held;
  std::array<double, kMaxVirtualStages> chunk_totals{};
  std::array<ActivationBytes, 2> chunk_ends{}; // [0]: first chunk's extras, [1]: last chunk's
  std::array<std::int64_t, kMaxVirtualStages> moe_layers_of_chunk{};
  std::array<std::int64_t, kMaxVirtualStages> dense_layers_of_chunk{};
  double working_set = 0;
  MemoryBreakdown memory;
  memory.pp_rank = pp_rank;

  const LayerParameters mtp_parameters =
      model.mtp_num_layers > 0 ? mtp_layer_parameters(model) : LayerParameters{};
  const bool mtp_is_moe = model.is_moe_layer(model.num_layers - 1);
  const ActivationBytes& mtp_decoder_layer = mtp_is_moe ? moe_layer : dense_layer;

  if (first_stage) {
    // Token ids [s·b/CP] int64, which VocabParallelEmbedding keeps (masked) for its backward.
    chunk_ends[0].embedding_and_loss = kInt64Bytes * shape.tokens_tensor_parallel;
  }
  if (last_stage) {
    chunk_ends[1].embedding_and_loss = loss_activation_bytes(shape);
    if (model.mtp_num_layers > 0) {
      const double mtp_layers = as_double(model.mtp_num_layers);
      add_scaled(chunk_ends[1], mtp_decoder_layer, mtp_layers);
      chunk_ends[1].embedding_and_loss += mtp_layers * mtp_extra_activation_bytes(shape);
      working_set = std::max(working_set, mtp_decoder_layer.working_set);
    }
    // The bf16 logits before the fp32 cast.
    working_set = std::max(working_set, kBf16Bytes * shape.tokens_tensor_parallel *
                                            shape.padded_vocab / shape.tp);
  }

  auto chunk_activation = [&](std::int64_t chunk) {
    ActivationBytes bytes;
    add_scaled(bytes, dense_layer, as_double(dense_layers_of_chunk[chunk]));
    add_scaled(bytes, moe_layer, as_double(moe_layers_of_chunk[chunk]));
    if (chunk == 0)
      add_scaled(bytes, chunk_ends[0], 1);
    if (chunk == config.vpp - 1)
      add_scaled(bytes, chunk_ends[1], 1);
    return bytes;
  };

  for (std::int64_t chunk = 0; chunk < config.vpp; ++chunk) {
    const LayerRange range =
        layers_of_stage(model.num_layers, config.pp, config.vpp, pp_rank, chunk);
    moe_layers_of_chunk[chunk] += model.num_moe_layers_in(range.first, range.end);
    dense_layers_of_chunk[chunk] += range.count() - model.num_moe_layers_in(range.first, range.end);
    if (moe_layers_of_chunk[chunk] > 0)
      working_set = std::max(working_set, moe_layer.working_set);
    if (dense_layers_of_chunk[chunk] > 0)
      working_set = std::max(working_set, dense_layer.working_set);
    held.add(moe_layer_parameters, as_double(moe_layers_of_chunk[chunk]));
    held.add(dense_layer_parameters, as_double(dense_layers_of_chunk[chunk]));
    memory.layers += range.count();
  }
  for (std::int64_t chunk = 0; chunk < config.vpp; ++chunk)
    chunk_totals[chunk] = chunk_activation(chunk).total();

  // Vocabulary tables of padded_vocab_size(V, TP) rows, split over TP. The first stage holds the
  // input embedding; the last stage the output layer — its own weights when untied, a copy of the
  // embedding kept in sync over the embedding group when tied and PP > 1 (with PP = 1 the one
  // table serves both); and with MTP the last stage also builds an embedding for the MTP input
  // (gpt_model.py: pre_process or mtp_process).
  const double vocab_table =
      as_double(embedding_table_parameters(model, padded_vocab_size(model.vocab_size, config.tp)));
  if (first_stage)
    held.tensor_parallel += vocab_table;
  if (last_stage) {
    const bool output_shares_embedding =
        config.pp == 1 && !model.untie_embeddings_and_output_weights;
    if (!output_shares_embedding)
      held.tensor_parallel += vocab_table;
    if (model.mtp_num_layers > 0 && config.pp > 1)
      held.tensor_parallel += vocab_table;
    held.replicated += as_double(norm_parameters(model)); // final norm
    if (model.mtp_num_layers > 0) {
      held.add(shard_layer(mtp_parameters, mla_replicated), as_double(model.mtp_num_layers));
    }
  }

  // Per GPU: TP-split parameters over TP, routed experts over ETP·EP (ETP splits each expert's
  // width, EP the experts); optimizer state over DP×CP (Megatron's intra_dp_cp group) or DP (the
  // estimator), and over EDP for routed experts.
  memory.dense_parameters = held.tensor_parallel / shape.tp + held.replicated;
  memory.expert_parameters = held.expert / as_double(config.etp * config.ep);
  const double parameters = memory.dense_parameters + memory.expert_parameters;
  const std::int64_t dense_shards =
      sharding == OptimizerSharding::data_and_context_parallel ? config.dp * config.cp : config.dp;
  memory.weights_bytes = kParameterBytes * parameters;
  memory.gradients_bytes = kMainGradientBytes * parameters;
  memory.optimizer_bytes =
      kOptimizerStateBytes * (memory.dense_parameters / as_double(dense_shards) +
                              memory.expert_parameters / as_double(config.edp));

  const InFlight in_flight = peak_in_flight(config, num_micro_batches(config, training), pp_rank,
                                            options.overlap_moe_expert_parallel_comm, chunk_totals);
  memory.in_flight_chunks = in_flight.chunks;
  for (std::int64_t chunk = 0; chunk < config.vpp; ++chunk)
    add_scaled(memory.activations, chunk_activation(chunk), as_double(in_flight.per_chunk[chunk]));
  memory.activations.working_set = working_set;
  memory.activations_bytes = memory.activations.total();

  memory.communicators = data_communicators(model, config, pp_rank);
  memory.other_bytes = runtime_allowance_bytes(memory.communicators);
  return memory;
}

MemoryBreakdown peak_memory_per_gpu(const ModelSpec& model, const ParallelConfig& config,
                                    const TrainingShape& training, const PlanOptions& options,
                                    double imbalance_factor, OptimizerSharding sharding) {
  MemoryBreakdown peak =
      memory_per_gpu(model, config, training, options, 0, imbalance_factor, sharding);
  for (std::int64_t pp_rank = 1; pp_rank < config.pp; ++pp_rank) {
    const MemoryBreakdown rank =
        memory_per_gpu(model, config, training, options, pp_rank, imbalance_factor, sharding);
    if (rank.total_bytes() > peak.total_bytes())
      peak = rank;
  }
  return peak;
}

std::vector<std::pair<std::string, double>> memory_terms(const MemoryBreakdown& memory) {
  return {
      {"weights", memory.weights_bytes},
      {"gradients", memory.gradients_bytes},
      {"optimizer", memory.optimizer_bytes},
      {"activations_attention", memory.activations.attention},
      {"activations_mlp", memory.activations.mlp},
      {"activations_routed_experts", memory.activations.routed_experts},
      {"activations_layer_checkpoints", memory.activations.layer_checkpoints},
      {"activations_embedding_and_loss", memory.activations.embedding_and_loss},
      {"activations_working_set", memory.activations.working_set},
      {"other", memory.other_bytes},
  };
}

double megatron_estimator_weight_and_optimizer_bytes(const ModelSpec& model,
                                                     const ParallelConfig& config) {
  // theoretical_memory_usage.py compute_weight_and_optimizer_memory after PR #4687 (reference
  // §5.1): the most loaded shard holds 1/PP of the transformer block (final norm included), the
  // whole MTP block and one embedding table (two when untied with PP = 1), in three buckets.
  const double pp = as_double(config.pp);
  const double attention = as_double(attention_parameters(model));
  const double dense_mlp = as_double(dense_mlp_parameters(model));
  const double shared = as_double(shared_expert_parameters(model));
  const double routed = as_double(routed_expert_parameters(model) * model.moe.num_experts);
  const double norms = as_double(layer_norm_parameters(model));
  const double router = as_double(router_parameters(model));
  const double moe_layers = as_double(model.num_moe_layers());
  const double dense_layers = as_double(model.num_dense_layers());
  const bool mtp_is_moe = model.is_moe_layer(model.num_layers - 1);
  const double mtp_moe_layers = mtp_is_moe ? as_double(model.mtp_num_layers) : 0;
  const double mtp_dense_layers = mtp_is_moe ? 0 : as_double(model.mtp_num_layers);
  const double vocab_table =
      as_double(embedding_table_parameters(model, padded_vocab_size(model.vocab_size, config.tp)));

  double tensor_parallel =
      ((attention + dense_mlp) * dense_layers + (attention + shared) * moe_layers) / pp +
      (attention + dense_mlp) * mtp_dense_layers + (attention + shared) * mtp_moe_layers +
      vocab_table;
  if (model.untie_embeddings_and_output_weights && config.pp == 1)
    tensor_parallel += vocab_table;
  const double replicated =
      (norms * dense_layers + (norms + router) * moe_layers + as_double(norm_parameters(model))) /
          pp +
      norms * mtp_dense_layers + (norms + router) * mtp_moe_layers;
  const double expert = routed * moe_layers / pp + routed * mtp_moe_layers;

  // bytes_per_param = 6 + 12/d with the distributed optimizer; d = DP = world/(TP·PP·CP) for the
  // dense buckets and EDP for the experts.
  const auto bytes_per_parameter = [](std::int64_t shards) {
    return kParameterBytes + kMainGradientBytes + kOptimizerStateBytes / as_double(shards);
  };
  return (tensor_parallel / as_double(config.tp) + replicated) * bytes_per_parameter(config.dp) +
         expert / as_double(config.etp * config.ep) * bytes_per_parameter(config.edp);
}

double megatron_estimator_activation_bytes(const ModelSpec& model, const ParallelConfig& config,
                                           const TrainingShape& training, Recompute recompute,
                                           std::int64_t num_micro_batches) {
  const double s = as_double(training.seq_length);
  const double b = as_double(training.micro_batch_size);
  const double h = as_double(model.hidden_size);
  const double f = as_double(model.ffn_hidden_size);
  const double tp = as_double(config.tp);
  const double pp = as_double(config.pp);
  const double layers = as_double(model.num_layers);
  const double vocab = as_double(padded_vocab_size(model.vocab_size, config.tp));
  // report_theoretical_memory: the "with SP" formula only for --sequence-parallel with
  // --recompute-granularity selective; Megatron turns SP off when TP = 1.
  const bool with_sequence_parallel = config.tp > 1 && recompute == Recompute::selective;

  // Korthikanti et al. Table 2: 34·s·b·h per layer for f = 4h with SP and selective recompute;
  // without SP, s·b·h·(10 + 24/TP).
  const double per_layer =
      with_sequence_parallel ? s * b * h * (18 + 4 * f / h) : s * b * h * (10 + 24 / tp);
  double activations = per_layer * layers;
  // Input to the embedding (int64 ids) and the embedding dropout, PP micro-batches in flight.
  activations += 8 * s * b * pp + s * b * h * pp;
  if (config.vpp > 1) {
    activations *= 1 + (pp - 1) / (pp * as_double(config.vpp));
  } else if (config.pp > 1) {
    activations *= std::min(1.0, as_double(num_micro_batches) / pp);
  }
  if (with_sequence_parallel) {
    if (config.pp == 1)
      activations += s * b * h * 4 * (1 + vocab / h); // output layer input and CE
    return activations / tp;
  }
  if (config.pp == 1)
    activations += (s * b * vocab / tp + s * b * h) * 2; // logits and final norm output
  // "buffer for optimizer and miscellaneous temporaries (5% overhead)"
  return activations * 1.05;
}

} // namespace foldplan
