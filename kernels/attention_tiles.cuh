// Warp-level building blocks the attention kernels share: cp.async tile loads into padded shared
// memory, ldmatrix fragment loads and the m16n8k16 bf16 tensor-core product (PTX ISA, "Warp-level
// matrix fragment mma.m16n8k16"). Fragment layouts, per lane (g = lane / 4, t = lane % 4):
//   A 16×16: a0 (g, 2t..2t+1) a1 (g+8, 2t..) a2 (g, 2t+8..) a3 (g+8, 2t+8..)
//   B 16×8:  b0 (k 2t..2t+1, n g) b1 (k 2t+8.., n g)
//   C 16×8:  c0 c1 (g, 2t..2t+1) c2 c3 (g+8, 2t..2t+1)
#pragma once

#include <cstdint>

#include <cuda_bf16.h>

namespace foldplan::kernels::tiles {

using bf16 = __nv_bfloat16;

// Rows of shared tiles are padded by 16 bytes so that the 8 rows one ldmatrix reads fall in
// different banks (a row of 64 or 128 bf16 is a multiple of 128 bytes).
constexpr int pad = 8;

__device__ __forceinline__ std::uint32_t shared_address(const void* pointer) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(pointer));
}

// 16 bytes global → shared, bypassing L1; zero-filled when !valid (rows past the sequence end),
// so masked keys read as 0 instead of garbage that could be NaN.
__device__ __forceinline__ void copy_16_async(void* shared, const void* global, bool valid) {
  const int source_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(shared)),
               "l"(global), "r"(source_bytes));
}

__device__ __forceinline__ void commit_async() {
  asm volatile("cp.async.commit_group;\n" ::);
}

template <int pending> __device__ __forceinline__ void wait_async() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(pending));
}

// Copies rows × cols bf16 (rows of `global_row_stride` elements) into a padded shared tile;
// rows from `valid_rows` on are zero-filled.
template <int rows, int cols, int threads>
__device__ __forceinline__ void load_tile_async(bf16* shared, const bf16* global,
                                                std::int64_t global_row_stride, int valid_rows) {
  constexpr int chunks_per_row = cols / 8;
  constexpr int chunks = rows * chunks_per_row;
  static_assert(chunks % threads == 0, "tile chunks must spread evenly over the threads");
#pragma unroll
  for (int step = 0; step < chunks / threads; ++step) {
    const int chunk = step * threads + static_cast<int>(threadIdx.x);
    const int row = chunk / chunks_per_row;
    const int column = (chunk % chunks_per_row) * 8;
    const bool valid = row < valid_rows;
    const bf16* source = global + (valid ? row : 0) * global_row_stride + column;
    copy_16_async(shared + row * (cols + pad) + column, source, valid);
  }
}

// ldmatrix takes 32-bit shared addresses: computed once per thread from the tile's base, the
// compile-time offsets of the unrolled loops fold into the instruction.
__device__ __forceinline__ void load_matrix_x4(std::uint32_t (&r)[4], std::uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

__device__ __forceinline__ void load_matrix_x4_transposed(std::uint32_t (&r)[4],
                                                          std::uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// c += a · b for one 16×8 tile, fp32 accumulation.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const std::uint32_t (&a)[4],
                                         std::uint32_t b0, std::uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
               "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x on the special-function unit (flush-to-zero; exp2(-inf) = 0), as --use_fast_math's exp2f.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Accumulator tiles [rows][cols] of 16×8 C fragments start at 0.
template <int rows, int cols> __device__ __forceinline__ void zero(float (&acc)[rows][cols][4]) {
#pragma unroll
  for (int i = 0; i < rows; ++i) {
#pragma unroll
    for (int j = 0; j < cols; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        acc[i][j][e] = 0.0f;
      }
    }
  }
}

// Two floats as bf16x2, the lower column in the low half (A fragments, bf16x2 stores).
__device__ __forceinline__ std::uint32_t pack_bf16(float low, float high) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(low, high);
  return *reinterpret_cast<const std::uint32_t*>(&pair);
}

// Per-lane ldmatrix addresses of fragments in a padded shared tile (`stride` elements a row),
// relative to the tile's start; add (row · stride + column) · 2 bytes to move the fragment.
// A (m 16 × k 16) stored [m][k]: rows lane % 16, columns (lane / 16)·8.
__device__ __forceinline__ std::uint32_t a_lane_offset(int stride, int lane) {
  return static_cast<std::uint32_t>(((lane % 16) * stride + (lane / 16) * 8) * 2);
}
// Two B fragments (n 16 × k 16) stored [n][k]: x4 gives b0 b1 of n-tile 0 and of n-tile 8.
__device__ __forceinline__ std::uint32_t b_nk_lane_offset(int stride, int lane) {
  return static_cast<std::uint32_t>((((lane / 16) * 8 + lane % 8) * stride + ((lane / 8) % 2) * 8) *
                                    2);
}
// Two B fragments (k 16 × n 16) stored [k][n], read transposed: b0 b1 of n-tile 0 and n-tile 8.
__device__ __forceinline__ std::uint32_t b_kn_lane_offset(int stride, int lane) {
  return static_cast<std::uint32_t>(((((lane / 8) % 2) * 8 + lane % 8) * stride + (lane / 16) * 8) *
                                    2);
}
// A fragment (m 16 × k 16) stored [k][m], read transposed (Pᵀ, dSᵀ).
__device__ __forceinline__ std::uint32_t a_km_lane_offset(int stride, int lane) {
  return static_cast<std::uint32_t>(
      ((((lane / 8) / 2) * 8 + lane % 8) * stride + ((lane / 8) % 2) * 8) * 2);
}
// Byte offset of element (row, column) in a tile of `stride` elements a row.
__host__ __device__ constexpr std::uint32_t tile_offset(int stride, int row, int column) {
  return static_cast<std::uint32_t>((row * stride + column) * 2);
}

} // namespace foldplan::kernels::tiles
