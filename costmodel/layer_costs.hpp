// The time of each kind of transformer layer on one rank for one micro-batch, forward and backward,
// as Megatron-Core runs it: sequence-parallel attention with TP all-gather/reduce-scatter, context
// parallelism as a KV ring, MoE layers through the alltoall or allgather token dispatcher with
// expert TP, grouped expert GEMMs, recompute. Every GEMM is timed at its own shape (forward, dgrad
// and wgrad), so small expert GEMMs pay their real inefficiency.
#pragma once

#include "costmodel/cost_context.hpp"
#include "costmodel/phase_cost.hpp"
#include "models/model_spec.hpp"
#include "parallel/parallel_config.hpp"
#include "parallel/plan_options.hpp"
#include "topologies/group_placement.hpp"

namespace foldplan {

// Where rank 0's groups sit; every stage's groups have the same shape under Megatron's layout.
struct PlacedGroups {
  GroupPlacement tp, cp, tp_cp, pp, dp_cp, ep, etp, etp_ep, edp;
};
PlacedGroups place_groups_of_rank_zero(const Cluster& cluster, const ParallelConfig& config,
                                       bool folding = true);

// The small kernels of Megatron-Core's TopKRouter after its gating GEMM, counted in router.py and
// moe_utils.topk_softmax_with_capacity: top-k, softmax and its cast, the probabilities and the
// routing map scattered into [tokens, experts] (zeros, scatter, casts), tokens per expert (10);
// with a capacity, the top-k over tokens per expert, its mask, the logical and and the masking
// multiply (6 more); the load-balancing loss's own softmax, top-k and map, its sums, product and
// scale, and the loss tracker's update (13). Backward retraces the masking, scatter, softmax and
// top-k and the loss's products and sums (13). Each pays a launch even with few bytes.
int router_forward_kernels(const PlanOptions& options);

// Megatron's gradient-accumulation fusion (on by default with Transformer Engine): weight
// gradient GEMMs add straight into the fp32 main_grad buffer.
inline constexpr GemmOutput kWeightGradientOutput = GemmOutput::fp32_accumulate;
inline constexpr int kRouterBackwardKernels = 13;

class LayerCostModel {
public:
  // `expert_load_factor`: tokens on the busiest expert rank over the mean (1 = balanced routing).
  LayerCostModel(const CostContext& context, const ModelSpec& model, const ParallelConfig& config,
                 const TrainingShape& training, const PlanOptions& options,
                 const PlacedGroups& groups, double expert_load_factor = 1.0);

  PassCost dense_layer() const;
  PassCost moe_layer() const;
  PassCost decoder_layer(std::int64_t layer) const; // dense or MoE as the model says
  PassCost embedding() const;                       // first stage
  PassCost output_layer() const;                    // last stage: final norm, logits, loss
  // Bytes one rank sends to the next stage per micro-batch (activations, or their gradients).
  double pipeline_message_bytes() const;

private:
  // One linear layer [m, k] x [k, n] forward, or its dgrad and wgrad backward.
  double linear_forward_s(std::int64_t m, std::int64_t n, std::int64_t k) const;
  double linear_backward_s(std::int64_t m, std::int64_t n, std::int64_t k) const;
  double grouped_linear_forward_s(std::int64_t groups, std::int64_t m, std::int64_t n,
                                  std::int64_t k) const;
  double grouped_linear_backward_s(std::int64_t groups, std::int64_t m, std::int64_t n,
                                   std::int64_t k) const;
  double quantise_s(double elements) const; // fp8 cast of a GEMM input; 0 in bf16
  double memory_s(double bytes, int kernels = 1) const;

  PassCost attention_block() const;
  // The dense MLP, or the shared experts (`ffn` = their size), with their TP communication.
  PassCost tensor_parallel_mlp(std::int64_t ffn) const;
  PassCost routed_experts() const;
  PhaseCost tp_gather_and_scatter(double bytes) const; // SP all-gather + reduce-scatter pair

  const CostContext& context_;
  const ModelSpec& model_;
  const ParallelConfig& config_;
  const TrainingShape& training_;
  const PlanOptions& options_;
  const PlacedGroups& groups_;
  double expert_load_factor_;
  std::int64_t tokens_per_rank_; // b·s/CP: rows of the attention and MLP GEMMs
  std::int64_t sequence_shard_;  // b·s/(TP·CP): tokens between SP regions, at the MoE input
};

} // namespace foldplan
