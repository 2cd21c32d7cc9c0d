// Internal to the attention kernels and their tests and bench: the tile shapes, selectable so the
// bench can time each against the others (attention_forward and attention_backward use the
// defaults).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kernels/attention_dims.hpp"

namespace foldplan::kernels {

// Each warp owns 16·row_tiles_per_warp query rows; a block owns warps·16·row_tiles_per_warp rows
// and streams keys in blocks of 64.
enum class AttentionForwardTiles {
  warps8_rows16, // 8 warps × 16 rows: fewer registers, two blocks per multiprocessor
  warps4_rows32, // 4 warps × 32 rows: each K/V fragment read from shared memory feeds 2 MMAs
};

// Measured on the H100 (docs/attention.md): 32 rows a warp wins for head dims 64 and 128; with
// qk 192 its registers spill and 8 warps × 16 rows is 25% faster.
constexpr AttentionForwardTiles default_attention_forward_tiles(const AttentionDims& dims) {
  return dims.qk_head_dim > 128 ? AttentionForwardTiles::warps8_rows16
                                : AttentionForwardTiles::warps4_rows32;
}

cudaError_t attention_forward_with_tiles(AttentionForwardTiles tiles, const AttentionDims& dims,
                                         float softmax_scale, const __nv_bfloat16* q,
                                         const __nv_bfloat16* k, const __nv_bfloat16* v,
                                         __nv_bfloat16* o, float* lse, cudaStream_t stream);

// The backward's blocks: keys per block and warps (head dim 192 always runs keys64_warps8).
enum class AttentionBackwardTiles {
  keys64_warps8,  // 64 queries × 64 keys, warps own 16 rows of each product; two blocks per SM
  keys64_warps4,  // 64 × 64, warps own 32 × 32 score tiles (fewer shared-memory reads per MMA)
  keys128_warps8, // 64 × 128 as FlashAttention-2's hdim-128 backward: half the dQ atomics per
                  // FLOP, Q and dO double-buffered; one block per SM
};

// Fastest on the H100 (docs/attention.md) for head dim 128 from 2k keys and for 64 from 8k;
// keys64_warps4 leads by up to 9% for head dim 64 below that.
inline constexpr AttentionBackwardTiles default_attention_backward_tiles =
    AttentionBackwardTiles::keys128_warps8;

cudaError_t attention_backward_with_tiles(AttentionBackwardTiles tiles, const AttentionDims& dims,
                                          float softmax_scale, const __nv_bfloat16* q,
                                          const __nv_bfloat16* k, const __nv_bfloat16* v,
                                          const __nv_bfloat16* o, const __nv_bfloat16* d_o,
                                          const float* lse, __nv_bfloat16* dq, __nv_bfloat16* dk,
                                          __nv_bfloat16* dv, void* workspace, cudaStream_t stream);

} // namespace foldplan::kernels
