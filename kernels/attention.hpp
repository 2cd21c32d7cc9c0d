// Fused causal attention with grouped-query heads on the GPU (the FlashAttention-2 algorithm:
// tiles of keys streamed through shared memory with an online softmax, so the seq_q × seq_kv
// score matrix never reaches HBM). The runtime times it for the step program's attention ops.
#pragma once

#include <cstddef>
#include <string>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace foldplan::kernels {

// Layout (row-major, "BSHD" as Transformer Engine's default):
//   q [batch, seq_q, heads, qk_head_dim], k [batch, seq_kv, kv_heads, qk_head_dim],
//   v [batch, seq_kv, kv_heads, v_head_dim], o [batch, seq_q, heads, v_head_dim],
//   lse [batch, heads, seq_q] fp32: each query row's log-sum-exp of scaled scores (for backward).
// Query head h reads kv head h / (heads / kv_heads). The causal mask is aligned bottom-right, as
// FlashAttention's: query i sees key j when j <= i + (seq_kv - seq_q).
struct AttentionDims {
  int batch = 0, heads = 0, kv_heads = 0, seq_q = 0, seq_kv = 0;
  int qk_head_dim = 0, v_head_dim = 0;
  bool causal = true;
};

// Empty when the kernels run these dims; otherwise why not, naming the field and what is
// supported ("qk_head_dim 96: supported 64, 128").
std::string attention_unsupported_reason(const AttentionDims& dims);

cudaError_t attention_forward(const AttentionDims& dims, float softmax_scale,
                              const __nv_bfloat16* q, const __nv_bfloat16* k,
                              const __nv_bfloat16* v, __nv_bfloat16* o, float* lse,
                              cudaStream_t stream);

// Device scratch the backward needs (fp32 accumulators, rowsum(dO∘O)), in bytes.
std::size_t attention_backward_workspace_bytes(const AttentionDims& dims);

// dq, dk, dv in the layouts of q, k, v; dk and dv sum over the query heads sharing a kv head.
cudaError_t attention_backward(const AttentionDims& dims, float softmax_scale,
                               const __nv_bfloat16* q, const __nv_bfloat16* k,
                               const __nv_bfloat16* v, const __nv_bfloat16* o,
                               const __nv_bfloat16* d_o, const float* lse, __nv_bfloat16* dq,
                               __nv_bfloat16* dk, __nv_bfloat16* dv, void* workspace,
                               cudaStream_t stream);

} // namespace foldplan::kernels
