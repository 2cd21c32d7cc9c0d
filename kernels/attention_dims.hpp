// The shape of one attention call and which shapes the GPU kernels run: host-only, so the CPU
// reference, the cost of an op and the checks build and test without CUDA.
#pragma once

#include <cstdint>
#include <string>

namespace foldplan::kernels {

// Layout (row-major, "BSHD" as Transformer Engine's default):
//   q [batch, seq_q, heads, qk_head_dim], k [batch, seq_kv, kv_heads, qk_head_dim],
//   v [batch, seq_kv, kv_heads, v_head_dim], o [batch, seq_q, heads, v_head_dim],
//   lse [batch, heads, seq_q] fp32: each query row's log-sum-exp of scaled scores (for backward).
// Query head h reads kv head h / (heads / kv_heads). The causal mask is aligned bottom-right, as
// FlashAttention's: query i sees key j when j <= i + (seq_kv - seq_q). A query row that sees no
// key (causal with seq_q > seq_kv) gets o = 0 and lse = +inf, as FlashAttention-2 stores it, so
// the backward gives that row zero gradients.
struct AttentionDims {
  int batch = 0, heads = 0, kv_heads = 0, seq_q = 0, seq_kv = 0;
  int qk_head_dim = 0, v_head_dim = 0;
  bool causal = true;
};

// Empty when the kernels run these dims; otherwise why not, naming the field and what is
// supported ("qk_head_dim 96: supported 64, 128, 192").
std::string attention_unsupported_reason(const AttentionDims& dims);

// Whether query row i (0-based) sees key j under the dims' mask.
inline bool attention_key_visible(const AttentionDims& dims, std::int64_t i, std::int64_t j) {
  return !dims.causal || j <= i + (dims.seq_kv - dims.seq_q);
}

// Matrix-multiply FLOPs as FlashAttention and Megatron count them: 4·b·h·s_q·s_kv·d forward
// (QKᵀ and PV, d the mean of the two head dims), halved when causal, and 2.5× that backward.
double attention_forward_flops(const AttentionDims& dims);
double attention_backward_flops(const AttentionDims& dims);

} // namespace foldplan::kernels
