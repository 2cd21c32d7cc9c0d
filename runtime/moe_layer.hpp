// One MoE layer run for real on the GPUs of an expert-parallel group, as Megatron-Core's alltoall
// dispatcher runs it: router logits → softmax/top-k → permute (capacity dropping and padding) →
// all-to-all-v with data-dependent splits → expert GEMMs over the received tokens → all-to-all-v
// back → unpermute and weighted combine. Its results are checked against a CPU reference on the
// same random data, so `foldplan run` proves the data path, not only its timing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include "runtime/moe_layer_checks.hpp"

namespace foldplan::runtime {

struct MoeLayerSpec {
  std::int64_t tokens = 0;     // tokens entering the layer on this rank
  std::int64_t hidden = 0;     // model hidden size
  std::int64_t ffn_hidden = 0; // one expert's FFN hidden size (before ETP sharding)
  int experts = 0;             // experts of the whole model layer (divisible by the EP size)
  int top_k = 0;
  bool gated = true; // SwiGLU: fc1 yields 2·ffn_hidden
  double capacity_factor =
      0; // 0: dropless; else each expert keeps capacity_factor·tokens·top_k/experts
  bool pad_to_capacity = false;  // Megatron's --moe-pad-expert-input-to-capacity
  bool drop_by_position = false; // --moe-token-drop-policy position; default "probs"
  double routing_skew = 0; // 0: balanced logits; s > 0: expert e's logit biased by -s·log(e+1)
  std::uint64_t seed = 1;
  // Tokens whose router logits and combined output the CPU recomputes (all when fewer): the
  // expert FFN reference costs hidden·ffn_hidden per routed token on one core.
  std::int64_t reference_tokens = 64;
};

struct MoeLayerResult {
  std::vector<MoeLayerCheck> checks;
  std::vector<std::int64_t> tokens_per_local_expert; // rows each local expert received
  std::int64_t dropped_tokens = 0;                   // token-expert pairs this rank dropped
  // Seconds of one timed pass, by stage: router, permute, dispatch, experts, combine, unpermute.
  std::vector<std::pair<std::string, double>> stage_seconds;
  bool all_passed() const;
};

// Runs on the calling thread's current device. `ep` is this rank's EP group (size EP, experts
// split evenly over it); `etp` its expert-TP group, or nullptr when ETP = 1 (then each expert's
// GEMMs are whole; with ETP > 1 tokens are all-gathered over ETP before the experts and the output
// reduce-scattered after, each rank holding 1/ETP of ffn_hidden). Every rank of the group calls it
// with the same spec; the seed makes each rank's tokens differ.
MoeLayerResult run_moe_layer(const MoeLayerSpec& spec, ncclComm_t ep, ncclComm_t etp,
                             cudaStream_t stream, cublasHandle_t cublas);

} // namespace foldplan::runtime
