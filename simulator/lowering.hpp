// Lowering: a plan becomes the step program its ranks run — under balanced routing one
// RankProgram per pipeline stage, shared by every rank of that stage (TP, CP, DP, EP peers do the
// same work on other data); under simulated routing one per stage and place in the ETP×EP group.
// Each decoder layer, micro-batch and pass is lowered to the GEMMs, attention, memory-bound kernels
// and TP/CP/EP/ETP collectives that costmodel/layer_costs.cpp times analytically, at the same
// shapes and bytes; micro-batches follow Megatron's 1F1B schedule — non-interleaved, or interleaved
// over the model chunks of each stage when parallel.vpp > 1 — with p2p sends and receives between
// adjacent stages (and, interleaved, from the last stage back to stage 0 for the next chunk); the
// step ends with the data-parallel gradient reduce-scatter, the distributed-optimizer step and the
// parameter all-gather.
//
// Conventions:
// - Op names are "<scope>.<op>.<pass>", scope "layer7", "embedding", "output", "mtp0.output";
//   pass "fwd", "recompute", "dgrad", "wgrad" or "bwd" (backward ops other than GEMMs). A
//   backward collective keeps the name of the forward one it differentiates ("attn.tp_rs.bwd" is
//   the all-gather that undoes the forward reduce-scatter). The step's tail has no pass:
//   "optimizer.grad_rs_dense0", "optimizer.adam", "optimizer.param_ag_expert3".
// - Streams: TP and ETP collectives on tp_comm, CP on cp_comm, EP dispatch on ep_comm, pipeline
//   p2p on pp_comm, data-parallel collectives on dp_comm.
// - A pipeline transfer's tag is 2·(micro_batch·VPP + chunk) + direction (0: activations forward,
//   1: gradients backward; chunk: the sender's model chunk, 0 without VPP); the send of stage r
//   pairs with the receive of stage r±1 (mod PP when interleaved) with the same tag.
// - Interleaved (VPP > 1): each stage runs Megatron's forward_backward_pipelining_with_interleaving
//   order of (micro-batch, chunk) passes (groups of PP micro-batches, chunks ascending forward and
//   descending backward; warm-up 2·(PP−r−1) + (VPP−1)·PP capped at M·VPP, all of it when M == PP).
//   Chunk v of stage r holds layers_of_stage(L, PP, VPP, r, v); the embedding is on chunk 0 of
//   stage 0, the output layer (and MTP) on the last chunk of the last stage. Transfers are not
//   Megatron's batched per-step exchanges: each send follows the pass that produced its tensor,
//   each recv precedes the pass that consumes it, and every stage's pp_comm stream lists them in
//   the order of one reference run (forward 1, backward 2, transfers instant), which is a single
//   global order, so the in-order streams cannot deadlock.
// - all_to_all bytes are the whole send buffer (every routed row, the local share included), as
//   CollectiveShape defines them; layer_costs passes only the (EP−1)/EP that leaves the rank.
// - EP-communication overlap (options.overlap_moe_expert_parallel_comm): Megatron's combined 1F1B.
//   Each steady-state step runs one micro-batch's forward and another's backward as one step,
//   forward layer i beside backward layer n−1−i, in the segments of TransformerLayerSchedulePlan:
//   the backward combine all-to-all runs while the forward attention computes, the forward and
//   backward dispatch while the backward and forward experts compute, the forward combine while
//   the backward attention computes. Without pipelining: F1 | B1+F2 | … | Bn; interleaved: one
//   more warm-up forward per stage, then combined steps. Metadata "schedule" is then
//   "combined_<schedule>".
// - Routed experts (the overload taking ExpertLoads): the dispatch and combine all-to-alls are
//   all_to_all_v with each rank's per-peer split, and each rank's expert GEMMs, ETP all-gather and
//   permutations take the rows it dispatches and receives. Ranks of a stage at different places
//   of the ETP×EP group then get their own RankProgram; places whose programs come out equal
//   share one.
#pragma once

#include <cstdint>

#include "core/step_program.hpp"
#include "parallel/plan.hpp"
#include "simulator/expert_load.hpp"

namespace foldplan {

// Megatron DDP bucket size in parameters: max(40M, 1M · data-parallel size).
double data_parallel_bucket_parameters(std::int64_t data_parallel_size);

// The pipeline transfer tag of one micro-batch's activations (forward) or gradients (backward)
// leaving model chunk `chunk` of `vpp` chunks per stage.
int pipeline_tag(std::int64_t micro_batch, bool backward, std::int64_t chunk = 0,
                 std::int64_t vpp = 1);

// Lowers `plan` (validated: validate_plan) with balanced routing. Group families with a single
// rank per group are left out.
StepProgram lower_plan(const Plan& plan);

// Lowers `plan` with the routing of `loads` (from simulate_dispatch of the same plan; every EP
// group of a stage replays its samples). Uniform loads lower exactly as balanced routing does, one
// program per stage. std::invalid_argument when the dispatch geometry is not the plan's.
StepProgram lower_plan(const Plan& plan, const ExpertLoads& loads);

} // namespace foldplan
