// The expert side of the MoE layer on the GPU besides cuBLAS: seeded random tensors (the values
// of moe_random.hpp, so the CPU reference can regenerate them) and the FFN activation.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace foldplan::kernels {

// A [rows, cols] slice of a seeded row-major matrix with `global_cols` columns: local (r, c) is
// global (global_row(r), col_offset + c), where global_row(r) = low_row_offset + r for r <
// split_row and high_row_offset + (r - split_row) after it. The split lets one ETP shard of a
// gated fc1 hold its slice of the gate half and of the up half.
struct RandomMatrixSlice {
  std::int64_t rows = 0, cols = 0, global_cols = 0, col_offset = 0;
  std::int64_t split_row = 0, low_row_offset = 0, high_row_offset = 0;
};

cudaError_t fill_moe_random(const RandomMatrixSlice& slice, std::uint64_t seed,
                            std::uint64_t stream_id, float scale, __nv_bfloat16* out,
                            cudaStream_t stream);

// Megatron's expert activation on fc1's output [rows, 2·ffn] (gated: silu(first half)·second
// half) or [rows, ffn] (GELU), into out [rows, ffn].
cudaError_t moe_activation(const __nv_bfloat16* fc1_out, std::int64_t rows, std::int64_t ffn,
                           bool gated, __nv_bfloat16* out, cudaStream_t stream);

} // namespace foldplan::kernels
