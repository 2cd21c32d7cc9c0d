// The MoE layer's routing and permutation on the GPU, as Megatron-Core's router and alltoall
// dispatcher do them (the CPU twin is moe_reference.hpp, with the same rules spelled out):
// softmax/top-k over fp32 router logits, capacity dropping and padding, permute into
// expert-grouped rows, unpermute with the probabilities' weighted combine. C++17 (shared with .cu).
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace foldplan::kernels {

struct MoeRoutingDims {
  std::int64_t tokens = 0;
  int experts = 0;
  int top_k = 0;
  std::int64_t capacity = -1; // rows each expert keeps from this rank; -1: dropless
  bool pad_to_capacity = false;
  bool drop_by_position = false; // "position" drop policy; else "probs"
};

// Most rows the permuted buffer can hold: T·k, or capacity·E when padding.
std::int64_t moe_max_rows(const MoeRoutingDims& dims);

// Device buffers of one routing pass; the caller allocates them with these sizes.
struct MoeRoutingBuffers {
  std::int32_t* topk_experts = nullptr;  // [T·k], choice c = token·k + j
  float* topk_probs = nullptr;           // [T·k]
  std::int32_t* expert_tokens = nullptr; // [E·T] scratch: each expert's kept tokens in token order
  float* expert_probs = nullptr;         // [E·T] scratch: their probs
  std::int32_t* kept_per_expert = nullptr; // [E]
  std::int32_t* rows_per_expert = nullptr; // [E]: kept plus padding
  std::int32_t* choice_row = nullptr;      // [T·k]: row in the permuted buffer, -1 when dropped
  std::int32_t* row_token = nullptr;       // [moe_max_rows]: source token, -1 for padding
  float* row_prob = nullptr;               // [moe_max_rows]
};

// logits [T, E] fp32 → top-k experts (ties to the lower expert) and the softmax over the chosen
// logits, after subtracting expert_bias[e] (device, [E], or nullptr; the skew -s·log(e+1) is
// computed once on the host so the CPU reference subtracts the very same floats).
cudaError_t moe_topk_softmax(const MoeRoutingDims& dims, const float* logits,
                             const float* expert_bias, const MoeRoutingBuffers& buffers,
                             cudaStream_t stream);

// From the top-k choices: each expert's kept tokens (capacity rule), rows per expert, and the
// permuted row table (rows grouped by expert; kept rows in token order, then padding).
cudaError_t moe_dispatch_plan(const MoeRoutingDims& dims, const MoeRoutingBuffers& buffers,
                              cudaStream_t stream);

// rows[r] = tokens[row_token[r]] (zero for padding), [rows, hidden] bf16.
cudaError_t moe_permute(const __nv_bfloat16* tokens, std::int64_t hidden,
                        const std::int32_t* row_token, std::int64_t rows, __nv_bfloat16* out,
                        cudaStream_t stream);

// out[t] = Σ_j w·rows[choice_row[t·k+j]] over kept choices, summed in fp32; w = topk_probs when
// given, else 1 (the permute round trip).
cudaError_t moe_unpermute(const __nv_bfloat16* rows, std::int64_t hidden, std::int64_t tokens,
                          int top_k, const std::int32_t* choice_row, const float* topk_probs,
                          __nv_bfloat16* out, cudaStream_t stream);
cudaError_t moe_unpermute(const __nv_bfloat16* rows, std::int64_t hidden, std::int64_t tokens,
                          int top_k, const std::int32_t* choice_row, const float* topk_probs,
                          float* out, cudaStream_t stream);

} // namespace foldplan::kernels
