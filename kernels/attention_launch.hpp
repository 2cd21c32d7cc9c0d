// Internal to the attention kernels and their bench: the forward's tile shapes, selectable so the
// bench can time each against the others (the public attention_forward uses the default).
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

inline constexpr AttentionForwardTiles default_attention_forward_tiles =
    AttentionForwardTiles::warps4_rows32;

cudaError_t attention_forward_with_tiles(AttentionForwardTiles tiles, const AttentionDims& dims,
                                         float softmax_scale, const __nv_bfloat16* q,
                                         const __nv_bfloat16* k, const __nv_bfloat16* v,
                                         __nv_bfloat16* o, float* lse, cudaStream_t stream);

} // namespace foldplan::kernels
