// The CPU twin of the attention kernels: the same layout and masking (attention_dims.hpp), inputs
// rounded to bf16 as the GPU reads them, sums in double. Slow (every score is formed), for checks.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/attention_dims.hpp"
#include "kernels/bf16_rounding.hpp"

namespace foldplan::kernels {

struct AttentionReferenceForward {
  std::vector<float> o;   // [batch, seq_q, heads, v_head_dim]
  std::vector<float> lse; // [batch, heads, seq_q]
};

struct AttentionReferenceGradients {
  std::vector<float> dq, dk, dv; // in the layouts of q, k, v
};

// Throws InputError when a buffer's size does not match the dims or heads % kv_heads != 0.
AttentionReferenceForward attention_forward_reference(const AttentionDims& dims,
                                                      float softmax_scale, std::span<const float> q,
                                                      std::span<const float> k,
                                                      std::span<const float> v);

// Gradients of sum(o ∘ d_o) with respect to q, k and v (o recomputed from q, k, v).
AttentionReferenceGradients
attention_backward_reference(const AttentionDims& dims, float softmax_scale,
                             std::span<const float> q, std::span<const float> k,
                             std::span<const float> v, std::span<const float> d_o);

// Element counts of the tensors, for allocating buffers.
std::int64_t attention_q_elements(const AttentionDims& dims);
std::int64_t attention_k_elements(const AttentionDims& dims);
std::int64_t attention_v_elements(const AttentionDims& dims);
std::int64_t attention_o_elements(const AttentionDims& dims);
std::int64_t attention_lse_elements(const AttentionDims& dims);

} // namespace foldplan::kernels
