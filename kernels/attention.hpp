// Fused causal attention with grouped-query heads on the GPU (the FlashAttention-2 algorithm:
// tiles of keys streamed through shared memory with an online softmax, so the seq_q × seq_kv
// score matrix never reaches HBM). The runtime times it for the step program's attention ops.
#pragma once

#include <cstddef>
#include <string>

#include "kernels/attention_dims.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace foldplan::kernels {

// AttentionDims (layout, masking) and attention_unsupported_reason are in attention_dims.hpp.
// Every call returns cudaErrorInvalidValue for dims attention_unsupported_reason rejects.
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
