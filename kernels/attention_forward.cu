// FlashAttention-2's forward (Dao 2023, Algorithm 1): each block owns a tile of query rows, streams
// key/value tiles through double-buffered shared memory (cp.async), forms scores with tensor
// cores, keeps a running max and sum per row (online softmax) and rescales its fp32 output
// accumulator, then writes o once and the row's log-sum-exp for the backward.
#include <cmath>

#include "kernels/attention.hpp"
#include "kernels/attention_launch.hpp"
#include "kernels/attention_params.cuh"
#include "kernels/attention_tiles.cuh"

namespace foldplan::kernels {
namespace {

using tiles::bf16;

struct ForwardParams : AttentionCallParams {
  const bf16* q;
  const bf16* k;
  const bf16* v;
  bf16* o;
  float* lse;
};

constexpr int block_keys = 64;

template <int qk_dim, int v_dim, int warps, int row_tiles> struct ForwardShape {
  static constexpr int threads = warps * 32;
  static constexpr int block_rows = warps * 16 * row_tiles;
  static constexpr int q_stride = qk_dim + tiles::pad;
  static constexpr int v_stride = v_dim + tiles::pad;
  static constexpr int q_elements = block_rows * q_stride;
  static constexpr int k_elements = block_keys * q_stride;
  static constexpr int v_elements = block_keys * v_stride;
  static constexpr int shared_bytes =
      static_cast<int>(sizeof(bf16)) * (q_elements + 2 * k_elements + 2 * v_elements);
  // Two blocks per multiprocessor where registers and shared memory allow.
  static constexpr int min_blocks = shared_bytes <= 110 * 1024 ? 2 : 1;
};

template <int qk_dim, int v_dim, int warps, int row_tiles>
__global__ void __launch_bounds__(warps * 32,
                                  (ForwardShape<qk_dim, v_dim, warps, row_tiles>::min_blocks))
    attention_forward_kernel(const ForwardParams p) {
  using Shape = ForwardShape<qk_dim, v_dim, warps, row_tiles>;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  bf16* shared_q = reinterpret_cast<bf16*>(shared_bytes);
  bf16* shared_k = shared_q + Shape::q_elements;     // two buffers
  bf16* shared_v = shared_k + 2 * Shape::k_elements; // two buffers

  // Causal blocks with later rows see more keys: launch those first.
  const int row_block = static_cast<int>(gridDim.x - 1 - blockIdx.x);
  const int head = static_cast<int>(blockIdx.y);
  const int batch = static_cast<int>(blockIdx.z);
  const int kv_head = head / p.kv_group;
  const int row0 = row_block * Shape::block_rows;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const int causal_offset = p.seq_kv - p.seq_q; // query i sees key j <= i + offset

  const bf16* q = p.q + batch * p.q_batch + row0 * p.q_row + head * qk_dim;
  const bf16* k = p.k + batch * p.k_batch + kv_head * qk_dim;
  const bf16* v = p.v + batch * p.v_batch + kv_head * v_dim;
  bf16* o = p.o + batch * p.o_batch + row0 * p.o_row + head * v_dim;
  float* lse = p.lse + (static_cast<std::int64_t>(batch) * p.heads + head) * p.seq_q + row0;

  int key_blocks = (p.seq_kv + block_keys - 1) / block_keys;
  if (p.causal) {
    const int last_visible = row0 + Shape::block_rows - 1 + causal_offset;
    key_blocks = last_visible < 0 ? 0 : min(key_blocks, last_visible / block_keys + 1);
  }

  // Per-lane fragment addresses; the loops below add compile-time offsets.
  const std::uint32_t q_fragment = tiles::shared_address(shared_q) +
                                   tiles::tile_offset(Shape::q_stride, warp * 16, 0) +
                                   tiles::a_lane_offset(Shape::q_stride, lane);
  const std::uint32_t k_fragment =
      tiles::shared_address(shared_k) + tiles::b_nk_lane_offset(Shape::q_stride, lane);
  const std::uint32_t v_fragment =
      tiles::shared_address(shared_v) + tiles::b_kn_lane_offset(Shape::v_stride, lane);

  // Row r of this thread's tile mt, half h: row0 + tile_row(mt) + g + 8h.
  const auto tile_row = [&](int mt) { return mt * warps * 16 + warp * 16; };

  float acc_o[row_tiles][v_dim / 8][4];
  float row_max[row_tiles][2], row_sum[row_tiles][2];
  tiles::zero(acc_o);
#pragma unroll
  for (int mt = 0; mt < row_tiles; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      row_max[mt][h] = -INFINITY;
      row_sum[mt][h] = 0.0f;
    }
  }

  if (key_blocks > 0) {
    tiles::load_tile_async<Shape::block_rows, qk_dim, Shape::threads>(shared_q, q, p.q_row,
                                                                      p.seq_q - row0);
    tiles::load_tile_async<block_keys, qk_dim, Shape::threads>(shared_k, k, p.k_row, p.seq_kv);
    tiles::load_tile_async<block_keys, v_dim, Shape::threads>(shared_v, v, p.v_row, p.seq_kv);
    tiles::commit_async();
  }

  for (int key_block = 0; key_block < key_blocks; ++key_block) {
    const int buffer = key_block % 2;
    const int key0 = key_block * block_keys;
    if (key_block + 1 < key_blocks) {
      const int next0 = key0 + block_keys;
      const int next = 1 - buffer;
      tiles::load_tile_async<block_keys, qk_dim, Shape::threads>(
          shared_k + next * Shape::k_elements, k + next0 * p.k_row, p.k_row, p.seq_kv - next0);
      tiles::load_tile_async<block_keys, v_dim, Shape::threads>(
          shared_v + next * Shape::v_elements, v + next0 * p.v_row, p.v_row, p.seq_kv - next0);
      tiles::commit_async();
      tiles::wait_async<1>();
    } else {
      tiles::wait_async<0>();
    }
    __syncthreads();
    const std::uint32_t tile_k = k_fragment + buffer * Shape::k_elements * 2;
    const std::uint32_t tile_v = v_fragment + buffer * Shape::v_elements * 2;

    // S = Q Kᵀ for this warp's rows and the block's 64 keys.
    float s[row_tiles][block_keys / 8][4];
    tiles::zero(s);
#pragma unroll
    for (int kk = 0; kk < qk_dim / 16; ++kk) {
      std::uint32_t a[row_tiles][4];
#pragma unroll
      for (int mt = 0; mt < row_tiles; ++mt) {
        tiles::load_matrix_x4(
            a[mt], q_fragment + tiles::tile_offset(Shape::q_stride, mt * warps * 16, kk * 16));
      }
#pragma unroll
      for (int jp = 0; jp < block_keys / 16; ++jp) {
        std::uint32_t b[4];
        tiles::load_matrix_x4(b, tile_k + tiles::tile_offset(Shape::q_stride, jp * 16, kk * 16));
#pragma unroll
        for (int mt = 0; mt < row_tiles; ++mt) {
          tiles::mma_bf16(s[mt][2 * jp], a[mt], b[0], b[1]);
          tiles::mma_bf16(s[mt][2 * jp + 1], a[mt], b[2], b[3]);
        }
      }
    }

    // Mask keys past the end, and above the causal diagonal, only in blocks that reach them.
    const bool past_end = key0 + block_keys > p.seq_kv;
    const bool crosses_diagonal = p.causal && key0 + block_keys - 1 > row0 + causal_offset;
    if (past_end || crosses_diagonal) {
#pragma unroll
      for (int mt = 0; mt < row_tiles; ++mt) {
#pragma unroll
        for (int j = 0; j < block_keys / 8; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int row = row0 + tile_row(mt) + g + 8 * (e / 2);
            const int key = key0 + j * 8 + 2 * t + (e % 2);
            if (key >= p.seq_kv || (p.causal && key > row + causal_offset)) {
              s[mt][j][e] = -INFINITY;
            }
          }
        }
      }
    }

    // Online softmax: new running max, rescale what was summed so far, exponentiate in base 2.
#pragma unroll
    for (int mt = 0; mt < row_tiles; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float block_max = -INFINITY;
#pragma unroll
        for (int j = 0; j < block_keys / 8; ++j) {
          block_max = fmaxf(block_max, fmaxf(s[mt][j][2 * h], s[mt][j][2 * h + 1]));
        }
        // The four lanes of a quad hold one row.
        block_max = fmaxf(block_max, __shfl_xor_sync(0xffffffffu, block_max, 1));
        block_max = fmaxf(block_max, __shfl_xor_sync(0xffffffffu, block_max, 2));
        const float new_max = fmaxf(row_max[mt][h], block_max);
        // A row that has seen only masked keys keeps max -inf: exponentiate against 0 instead.
        const float base = new_max == -INFINITY ? 0.0f : new_max * p.scale_log2;
        const float correction = tiles::fast_exp2(row_max[mt][h] * p.scale_log2 - base);
        row_max[mt][h] = new_max;
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < block_keys / 8; ++j) {
#pragma unroll
          for (int e = 2 * h; e < 2 * h + 2; ++e) {
            s[mt][j][e] = tiles::fast_exp2(fmaf(s[mt][j][e], p.scale_log2, -base));
            sum += s[mt][j][e];
          }
        }
        row_sum[mt][h] = row_sum[mt][h] * correction + sum;
#pragma unroll
        for (int j = 0; j < v_dim / 8; ++j) {
          acc_o[mt][j][2 * h] *= correction;
          acc_o[mt][j][2 * h + 1] *= correction;
        }
      }
    }

    // O += P V: the score accumulators are already P's A fragments, two key tiles per k step.
#pragma unroll
    for (int kk = 0; kk < block_keys / 16; ++kk) {
      std::uint32_t a[row_tiles][4];
#pragma unroll
      for (int mt = 0; mt < row_tiles; ++mt) {
        a[mt][0] = tiles::pack_bf16(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        a[mt][1] = tiles::pack_bf16(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        a[mt][2] = tiles::pack_bf16(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        a[mt][3] = tiles::pack_bf16(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < v_dim / 16; ++dp) {
        std::uint32_t b[4];
        tiles::load_matrix_x4_transposed(
            b, tile_v + tiles::tile_offset(Shape::v_stride, kk * 16, dp * 16));
#pragma unroll
        for (int mt = 0; mt < row_tiles; ++mt) {
          tiles::mma_bf16(acc_o[mt][2 * dp], a[mt], b[0], b[1]);
          tiles::mma_bf16(acc_o[mt][2 * dp + 1], a[mt], b[2], b[3]);
        }
      }
    }
    // The next iteration's prefetch overwrites this buffer.
    __syncthreads();
  }

  // o = acc / rowsum; lse = max·scale + ln(rowsum); +inf and 0 for rows that saw no key.
#pragma unroll
  for (int mt = 0; mt < row_tiles; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float sum = row_sum[mt][h];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const int local_row = tile_row(mt) + g + 8 * h;
      if (row0 + local_row >= p.seq_q) {
        continue;
      }
      const bool empty = !(sum > 0.0f);
      const float inverse = empty ? 0.0f : 1.0f / sum;
      bf16* out_row = o + local_row * p.o_row;
#pragma unroll
      for (int j = 0; j < v_dim / 8; ++j) {
        *reinterpret_cast<std::uint32_t*>(out_row + j * 8 + 2 * t) =
            tiles::pack_bf16(acc_o[mt][j][2 * h] * inverse, acc_o[mt][j][2 * h + 1] * inverse);
      }
      if (t == 0) {
        lse[local_row] = empty ? INFINITY : row_max[mt][h] * p.scale + logf(sum);
      }
    }
  }
}

template <int qk_dim, int v_dim, int warps, int row_tiles>
cudaError_t launch_forward(const AttentionDims& dims, const ForwardParams& params,
                           cudaStream_t stream) {
  using Shape = ForwardShape<qk_dim, v_dim, warps, row_tiles>;
  auto* kernel = attention_forward_kernel<qk_dim, v_dim, warps, row_tiles>;
  // Per launch, not once per process: the attribute belongs to the current device, and a process
  // that drives several GPUs (one thread each) must set it on every one of them.
  const cudaError_t configured = cudaFuncSetAttribute(
      kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Shape::shared_bytes);
  if (configured != cudaSuccess) {
    return configured;
  }
  const dim3 grid((dims.seq_q + Shape::block_rows - 1) / Shape::block_rows,
                  static_cast<unsigned>(dims.heads), static_cast<unsigned>(dims.batch));
  kernel<<<grid, Shape::threads, Shape::shared_bytes, stream>>>(params);
  return cudaGetLastError();
}

template <int qk_dim, int v_dim>
cudaError_t launch_forward_tiles(AttentionForwardTiles tiles, const AttentionDims& dims,
                                 const ForwardParams& params, cudaStream_t stream) {
  return tiles == AttentionForwardTiles::warps8_rows16
             ? launch_forward<qk_dim, v_dim, 8, 1>(dims, params, stream)
             : launch_forward<qk_dim, v_dim, 4, 2>(dims, params, stream);
}

} // namespace

cudaError_t attention_forward_with_tiles(AttentionForwardTiles tiles, const AttentionDims& dims,
                                         float softmax_scale, const bf16* q, const bf16* k,
                                         const bf16* v, bf16* o, float* lse, cudaStream_t stream) {
  if (!attention_unsupported_reason(dims).empty()) {
    return cudaErrorInvalidValue;
  }
  ForwardParams params{};
  params.q = q;
  params.k = k;
  params.v = v;
  params.o = o;
  params.lse = lse;
  static_cast<AttentionCallParams&>(params) = attention_call_params(dims, softmax_scale);
  switch (dims.qk_head_dim) {
  case 64:
    return launch_forward_tiles<64, 64>(tiles, dims, params, stream);
  case 128:
    return launch_forward_tiles<128, 128>(tiles, dims, params, stream);
  default: // 192 with v 128 (attention_unsupported_reason allows nothing else)
    return launch_forward_tiles<192, 128>(tiles, dims, params, stream);
  }
}

cudaError_t attention_forward(const AttentionDims& dims, float softmax_scale, const bf16* q,
                              const bf16* k, const bf16* v, bf16* o, float* lse,
                              cudaStream_t stream) {
  return attention_forward_with_tiles(default_attention_forward_tiles(dims), dims, softmax_scale, q,
                                      k, v, o, lse, stream);
}

} // namespace foldplan::kernels
