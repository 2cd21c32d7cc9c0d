// Lowering: a plan becomes the step program its ranks run — one RankProgram per pipeline stage,
// shared by every rank of that stage (TP, CP, DP, EP peers do the same work on other data).
// Each decoder layer, micro-batch and pass is lowered to the GEMMs, attention, memory-bound kernels
// and TP/CP/EP/ETP collectives that costmodel/layer_costs.cpp times analytically, at the same
// shapes and bytes; micro-batches follow Megatron's non-interleaved 1F1B schedule with p2p sends
// and receives between adjacent stages; the step ends with the data-parallel gradient
// reduce-scatter, the distributed-optimizer step and the parameter all-gather.
//
// Conventions:
// - Op names are "<scope>.<op>.<pass>", scope "layer7", "embedding", "output", "mtp0.output";
//   pass "fwd", "recompute", "dgrad", "wgrad" or "bwd" (backward ops other than GEMMs). A
//   backward collective keeps the name of the forward one it differentiates ("attn.tp_rs.bwd" is
//   the all-gather that undoes the forward reduce-scatter). The step's tail has no pass:
//   "optimizer.grad_rs_dense0", "optimizer.adam", "optimizer.param_ag_expert3".
// - Streams: TP and ETP collectives on tp_comm, CP on cp_comm, EP dispatch on ep_comm, pipeline
//   p2p on pp_comm, data-parallel collectives on dp_comm.
// - A pipeline transfer's tag is 2·micro_batch + direction (0: activations forward, 1: gradients
//   backward); the send of stage r pairs with the receive of stage r±1 with the same tag.
// - all_to_all bytes are the whole send buffer (every routed row, the local share included), as
//   CollectiveShape defines them; layer_costs passes only the (EP−1)/EP that leaves the rank.
#pragma once

#include <cstdint>

#include "core/step_program.hpp"
#include "parallel/plan.hpp"

namespace foldplan {

// Megatron DDP bucket size in parameters: max(40M, 1M · data-parallel size).
double data_parallel_bucket_parameters(std::int64_t data_parallel_size);

// The pipeline transfer tag of one micro-batch's activations (forward) or gradients (backward).
int pipeline_tag(std::int64_t micro_batch, bool backward);

// Lowers `plan` (validated: validate_plan) with balanced routing. Interleaved pipelines
// (parallel.vpp > 1) are refused with an InputError on parallel.vpp: their schedule is not
// lowered yet. Group families with a single rank per group are left out.
StepProgram lower_plan(const Plan& plan);

} // namespace foldplan
