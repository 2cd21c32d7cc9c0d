// Memory per GPU: the bytes one GPU of a pipeline rank holds at its peak during a training step —
// weights, gradients and optimizer state as Megatron-Core's distributed optimizer holds them, the
// activations saved for backward by every micro-batch in flight under the pipeline schedule, one
// layer's transient buffers, and an allowance for the CUDA context and NCCL — plus reproductions
// of Megatron's own estimator (megatron/training/theoretical_memory_usage.py) to check against.
//
// Precision: with fp8 recipes Megatron still keeps bf16 parameters (no --fp8-param-gather) and
// fp32 main grads, and TE may save some GEMM inputs in fp8; this model keeps every term in its
// bf16 size (an upper bound for fp8 runs) and does not add TE's fp8 weight caches.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "models/model_spec.hpp"
#include "parallel/parallel_config.hpp"
#include "parallel/plan_options.hpp"

namespace foldplan {

// Over which ranks the distributed optimizer shards the state of non-expert parameters.
enum class OptimizerSharding {
  data_and_context_parallel, // what Megatron's optimizer does: the DP×CP group (intra_dp_cp)
  data_parallel_only,        // theoretical_memory_usage.py's simplification: DP alone
};

// Activations on one GPU, in bytes, by where they come from. For a single layer and micro-batch
// (decoder_layer_activation_bytes) or summed over everything a rank holds (MemoryBreakdown).
struct ActivationBytes {
  double attention = 0;          // input norm, Q K V, core-attention output and softmax statistics
  double mlp = 0;                // pre-MLP norm, dense MLP or shared experts
  double routed_experts = 0;     // router scores and the expert GEMMs' inputs and intermediates
  double layer_checkpoints = 0;  // full recompute: the input each layer keeps
  double embedding_and_loss = 0; // token ids; final norm, fp32 logits and labels; MTP heads
  double working_set = 0;        // one layer's transients: dispatch and gradient buffers, and
                                 // under full recompute the layer being recomputed

  double total() const;
};

struct MemoryBreakdown {
  std::int64_t pp_rank = 0;
  double weights_bytes = 0;   // bf16 parameters
  double gradients_bytes = 0; // fp32 main gradients (Megatron's default with bf16)
  double optimizer_bytes = 0; // fp32 master weights, Adam m and v, sharded
  double activations_bytes = 0;
  double other_bytes = 0; // CUDA context, NCCL buffers, allocator fragmentation
  ActivationBytes activations;

  // What the numbers above are made of.
  double dense_parameters = 0;  // parameters held that are not routed experts
  double expert_parameters = 0; // routed-expert parameters held
  std::int64_t layers = 0;      // decoder layers held, over all virtual chunks
  // (micro-batch, chunk) pairs whose activations are alive at the peak; with VPP = 1 this is
  // the number of micro-batches in flight.
  std::int64_t in_flight_chunks = 0;
  std::int64_t communicators = 0; // NCCL communicators of more than one rank that carry data

  double total_bytes() const;
};

// The memory of one GPU of pipeline rank `pp_rank`. `imbalance_factor` (>= 1) is the load of the
// hottest expert-parallel rank over the balanced load: it scales the routed-expert rows received
// unless a capacity factor bounds or (with padding) fixes them. Requires a configuration that
// validate_parallel_config accepts (even layer split); std::invalid_argument for a pp_rank out of
// range or an imbalance factor below 1. O(layers + PP·VPP²), no allocation.
MemoryBreakdown
memory_per_gpu(const ModelSpec& model, const ParallelConfig& config, const TrainingShape& training,
               const PlanOptions& options, std::int64_t pp_rank, double imbalance_factor = 1.0,
               OptimizerSharding sharding = OptimizerSharding::data_and_context_parallel);

// The most loaded pipeline rank (the lowest such rank on a tie); its pp_rank field says which.
MemoryBreakdown
peak_memory_per_gpu(const ModelSpec& model, const ParallelConfig& config,
                    const TrainingShape& training, const PlanOptions& options,
                    double imbalance_factor = 1.0,
                    OptimizerSharding sharding = OptimizerSharding::data_and_context_parallel);

// Named terms for a plan's "memory" breakdown (bytes): weights, gradients, optimizer, each
// activation source, other. They sum to total_bytes().
std::vector<std::pair<std::string, double>> memory_terms(const MemoryBreakdown& memory);

// The activations one decoder layer saves for backward for one micro-batch on one GPU, under
// `options.recompute` (working_set: that layer's transient buffers).
ActivationBytes decoder_layer_activation_bytes(const ModelSpec& model, const ParallelConfig& config,
                                               const TrainingShape& training,
                                               const PlanOptions& options, std::int64_t layer,
                                               double imbalance_factor = 1.0);

// Rows the routed experts of one GPU process per MoE layer and micro-batch (alltoall or allgather
// dispatcher): ETP·T·k·imbalance dropless, at most E·capacity·ETP with a capacity factor and
// exactly that with padding, where T = s·b/(TP·CP) and capacity = ceil(T·k/E·cf).
double routed_expert_rows(const ModelSpec& model, const ParallelConfig& config,
                          const TrainingShape& training, const PlanOptions& options,
                          double imbalance_factor = 1.0);

// (micro-batch, chunk) pairs whose activations pipeline rank `pp_rank` holds at once at its peak:
// min(PP − r, M) under 1F1B, Megatron's interleaved warm-up 2·(PP − r − 1) + (VPP − 1)·PP plus
// one (at most M·VPP), one with PP = 1; EP overlap adds one.
std::int64_t in_flight_chunks(const ParallelConfig& config, std::int64_t num_micro_batches,
                              std::int64_t pp_rank, bool overlap_moe_expert_parallel_comm);

// Megatron theoretical_memory_usage.py compute_weight_and_optimizer_memory, MoE-aware since
// Megatron-LM PR #4687, with the distributed optimizer: bytes on the most loaded shard.
double megatron_estimator_weight_and_optimizer_bytes(const ModelSpec& model,
                                                     const ParallelConfig& config);

// Megatron theoretical_memory_usage.py activations of the first pipeline stage:
// compute_activation_memory (sequence parallel and selective recompute) or else
// compute_activation_memory_without_sp, chosen as report_theoretical_memory chooses (sequence
// parallelism is on whenever TP > 1). Dense-only, as Megatron's is.
double megatron_estimator_activation_bytes(const ModelSpec& model, const ParallelConfig& config,
                                           const TrainingShape& training, Recompute recompute,
                                           std::int64_t num_micro_batches);

} // namespace foldplan
