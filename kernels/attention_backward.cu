// FlashAttention-2's backward (Dao 2023, Algorithm 2): each block owns a tile of keys of one query
// head and walks the query tiles that see it, recomputing P = exp(scale·QKᵀ − lse) from the
// forward's log-sum-exp. dV += Pᵀ dO and dK += dSᵀ Q stay in registers; dQ += dS K is added
// atomically to an fp32 workspace, converted to bf16 at the end. dS = P ∘ (dP − delta) with
// dP = dO Vᵀ and delta = rowsum(dO ∘ O), computed first by a small kernel. With grouped-query
// heads the query heads of a kv head add their dK, dV into fp32 workspace too.
#include <cmath>

#include "kernels/attention.hpp"
#include "kernels/attention_tiles.cuh"

namespace foldplan::kernels {
namespace {

using tiles::bf16;

constexpr int backward_warps = 8;
constexpr int backward_threads = backward_warps * 32;
constexpr int block_queries = 64;
constexpr int block_keys = 64;

struct BackwardParams {
  const bf16* q;
  const bf16* k;
  const bf16* v;
  const bf16* d_o;
  const float* lse;
  const float* delta; // [batch, heads, seq_q]
  float* dq_accum;    // [batch, seq_q, heads, qk_dim], unscaled
  float* dk_accum;    // [batch, seq_kv, kv_heads, qk_dim] when heads share kv heads
  float* dv_accum;    // [batch, seq_kv, kv_heads, v_dim]
  bf16* dk;
  bf16* dv;
  int heads, kv_group, seq_q, seq_kv;
  std::int64_t q_row, k_row, v_row, o_row;
  std::int64_t q_batch, k_batch, v_batch, o_batch;
  float scale, scale_log2;
  bool causal;
};

template <int qk_dim, int v_dim> struct BackwardShape {
  static constexpr int q_stride = qk_dim + tiles::pad;
  static constexpr int v_stride = v_dim + tiles::pad;
  static constexpr int p_stride = block_keys + tiles::pad;
  static constexpr int q_elements = block_queries * q_stride;
  static constexpr int d_o_elements = block_queries * v_stride;
  static constexpr int k_elements = block_keys * q_stride;
  static constexpr int v_elements = block_keys * v_stride;
  static constexpr int p_elements = block_queries * p_stride;
  static constexpr int bf16_elements =
      q_elements + d_o_elements + k_elements + v_elements + 2 * p_elements;
  static constexpr int shared_bytes =
      static_cast<int>(sizeof(bf16)) * bf16_elements + 2 * block_queries * 4;
  static constexpr int min_blocks = qk_dim <= 128 ? 2 : 1;
};

// delta = rowsum(dO ∘ O) per (batch, head, query), one warp a row.
template <int v_dim>
__global__ void attention_backward_delta_kernel(const bf16* o, const bf16* d_o, float* delta,
                                                int heads, int seq_q, std::int64_t rows) {
  const std::int64_t row = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  if (row >= rows) {
    return;
  }
  // row enumerates [batch, seq_q, heads] as o does; delta is [batch, heads, seq_q].
  const int head = static_cast<int>(row % heads);
  const std::int64_t batch_query = row / heads;
  const int query = static_cast<int>(batch_query % seq_q);
  const std::int64_t batch = batch_query / seq_q;
  float sum = 0.0f;
#pragma unroll
  for (int c = lane * 2; c < v_dim; c += 64) {
    const float2 a =
        __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(o + row * v_dim + c));
    const float2 b =
        __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(d_o + row * v_dim + c));
    sum += a.x * b.x + a.y * b.y;
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  }
  if (lane == 0) {
    delta[(batch * heads + head) * seq_q + query] = sum;
  }
}

template <int qk_dim, int v_dim>
__global__ void __launch_bounds__(backward_threads, (BackwardShape<qk_dim, v_dim>::min_blocks))
    attention_backward_kernel(const BackwardParams p) {
  using Shape = BackwardShape<qk_dim, v_dim>;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  bf16* shared_q = reinterpret_cast<bf16*>(shared_bytes);
  bf16* shared_d_o = shared_q + Shape::q_elements;
  bf16* shared_k = shared_d_o + Shape::d_o_elements;
  bf16* shared_v = shared_k + Shape::k_elements;
  bf16* shared_p = shared_v + Shape::v_elements;
  bf16* shared_ds = shared_p + Shape::p_elements;
  float* shared_lse = reinterpret_cast<float*>(shared_ds + Shape::p_elements); // log2 domain
  float* shared_delta = shared_lse + block_queries;

  const int key_block = static_cast<int>(blockIdx.x);
  const int head = static_cast<int>(blockIdx.y);
  const int batch = static_cast<int>(blockIdx.z);
  const int kv_head = head / p.kv_group;
  const int key0 = key_block * block_keys;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const int causal_offset = p.seq_kv - p.seq_q;

  const bf16* q = p.q + batch * p.q_batch + head * qk_dim;
  const bf16* d_o = p.d_o + batch * p.o_batch + head * v_dim;
  const bf16* k = p.k + batch * p.k_batch + key0 * p.k_row + kv_head * qk_dim;
  const bf16* v = p.v + batch * p.v_batch + key0 * p.v_row + kv_head * v_dim;
  const std::int64_t row_stats = (static_cast<std::int64_t>(batch) * p.heads + head) * p.seq_q;
  float* dq_accum = p.dq_accum + batch * p.q_batch + head * qk_dim;

  // Query blocks that see any key of this block: query i sees key j when i >= j - offset.
  const int query_blocks = (p.seq_q + block_queries - 1) / block_queries;
  const int first_query_block = p.causal ? max(0, key0 - causal_offset) / block_queries : 0;

  // Warp tiles. S, dP (queries × keys): 16 queries × 32 keys. dK, dV (keys × dims): 16 keys ×
  // half the dims. dQ (queries × dims): 16 queries × half the dims.
  const int s_row = (warp % 4) * 16, s_col = (warp / 4) * 32;
  const int kv_row = (warp % 4) * 16;
  const int dk_col = (warp / 4) * (qk_dim / 2), dv_col = (warp / 4) * (v_dim / 2);
  const int dq_row = (warp % 4) * 16, dq_col = (warp / 4) * (qk_dim / 2);

  float acc_dk[qk_dim / 16][4], acc_dv[v_dim / 16][4];
#pragma unroll
  for (int j = 0; j < qk_dim / 16; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      acc_dk[j][e] = 0.0f;
    }
  }
#pragma unroll
  for (int j = 0; j < v_dim / 16; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      acc_dv[j][e] = 0.0f;
    }
  }

  const std::uint32_t base = tiles::shared_address(shared_q);
  const auto offset_of = [&](const bf16* tile) {
    return base + static_cast<std::uint32_t>((tile - shared_q) * 2);
  };
  // S = Q Kᵀ and dP = dO Vᵀ.
  const std::uint32_t q_a = offset_of(shared_q) + tiles::tile_offset(Shape::q_stride, s_row, 0) +
                            tiles::a_lane_offset(Shape::q_stride, lane);
  const std::uint32_t d_o_a = offset_of(shared_d_o) +
                              tiles::tile_offset(Shape::v_stride, s_row, 0) +
                              tiles::a_lane_offset(Shape::v_stride, lane);
  const std::uint32_t k_b = offset_of(shared_k) + tiles::tile_offset(Shape::q_stride, s_col, 0) +
                            tiles::b_nk_lane_offset(Shape::q_stride, lane);
  const std::uint32_t v_b = offset_of(shared_v) + tiles::tile_offset(Shape::v_stride, s_col, 0) +
                            tiles::b_nk_lane_offset(Shape::v_stride, lane);
  // dV += Pᵀ dO and dK += dSᵀ Q: A read transposed from [query][key], B from [query][dim].
  const std::uint32_t p_at = offset_of(shared_p) + tiles::tile_offset(Shape::p_stride, 0, kv_row) +
                             tiles::a_km_lane_offset(Shape::p_stride, lane);
  const std::uint32_t ds_at = offset_of(shared_ds) +
                              tiles::tile_offset(Shape::p_stride, 0, kv_row) +
                              tiles::a_km_lane_offset(Shape::p_stride, lane);
  const std::uint32_t d_o_b = offset_of(shared_d_o) +
                              tiles::tile_offset(Shape::v_stride, 0, dv_col) +
                              tiles::b_kn_lane_offset(Shape::v_stride, lane);
  const std::uint32_t q_b = offset_of(shared_q) + tiles::tile_offset(Shape::q_stride, 0, dk_col) +
                            tiles::b_kn_lane_offset(Shape::q_stride, lane);
  // dQ += dS K: A from [query][key], B from [key][dim].
  const std::uint32_t ds_a = offset_of(shared_ds) + tiles::tile_offset(Shape::p_stride, dq_row, 0) +
                             tiles::a_lane_offset(Shape::p_stride, lane);
  const std::uint32_t k_kn = offset_of(shared_k) + tiles::tile_offset(Shape::q_stride, 0, dq_col) +
                             tiles::b_kn_lane_offset(Shape::q_stride, lane);

  if (first_query_block < query_blocks) {
    tiles::load_tile_async<block_keys, qk_dim, backward_threads>(shared_k, k, p.k_row,
                                                                 p.seq_kv - key0);
    tiles::load_tile_async<block_keys, v_dim, backward_threads>(shared_v, v, p.v_row,
                                                                p.seq_kv - key0);
    const int query0 = first_query_block * block_queries;
    tiles::load_tile_async<block_queries, qk_dim, backward_threads>(shared_q, q + query0 * p.q_row,
                                                                    p.q_row, p.seq_q - query0);
    tiles::load_tile_async<block_queries, v_dim, backward_threads>(
        shared_d_o, d_o + query0 * p.o_row, p.o_row, p.seq_q - query0);
    tiles::commit_async();
  }

  for (int query_block = first_query_block; query_block < query_blocks; ++query_block) {
    const int query0 = query_block * block_queries;
    if (threadIdx.x < block_queries) {
      const int query = query0 + static_cast<int>(threadIdx.x);
      const bool valid = query < p.seq_q;
      // Rows past the end get lse +inf, so their P and dS are 0.
      shared_lse[threadIdx.x] =
          valid ? p.lse[row_stats + query] * static_cast<float>(M_LOG2E) : INFINITY;
      shared_delta[threadIdx.x] = valid ? p.delta[row_stats + query] : 0.0f;
    }
    tiles::wait_async<0>();
    __syncthreads();

    float s[4][4], dp[4][4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[j][e] = 0.0f;
        dp[j][e] = 0.0f;
      }
    }
#pragma unroll
    for (int kk = 0; kk < qk_dim / 16; ++kk) {
      std::uint32_t a[4], b0[4], b1[4];
      tiles::load_matrix_x4(a, q_a + kk * 32);
      tiles::load_matrix_x4(b0, k_b + kk * 32);
      tiles::load_matrix_x4(b1, k_b + tiles::tile_offset(Shape::q_stride, 16, 0) + kk * 32);
      tiles::mma_bf16(s[0], a, b0[0], b0[1]);
      tiles::mma_bf16(s[1], a, b0[2], b0[3]);
      tiles::mma_bf16(s[2], a, b1[0], b1[1]);
      tiles::mma_bf16(s[3], a, b1[2], b1[3]);
    }
#pragma unroll
    for (int kk = 0; kk < v_dim / 16; ++kk) {
      std::uint32_t a[4], b0[4], b1[4];
      tiles::load_matrix_x4(a, d_o_a + kk * 32);
      tiles::load_matrix_x4(b0, v_b + kk * 32);
      tiles::load_matrix_x4(b1, v_b + tiles::tile_offset(Shape::v_stride, 16, 0) + kk * 32);
      tiles::mma_bf16(dp[0], a, b0[0], b0[1]);
      tiles::mma_bf16(dp[1], a, b0[2], b0[3]);
      tiles::mma_bf16(dp[2], a, b1[0], b1[1]);
      tiles::mma_bf16(dp[3], a, b1[2], b1[3]);
    }

    // P = exp2(S·scale·log2 e − lse·log2 e) with the mask; dS = P ∘ (dP − delta). Both go to
    // shared memory as bf16 for the transposed products.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int local_row = s_row + g + 8 * h;
      const int query = query0 + local_row;
      const float row_lse = shared_lse[local_row];
      const float row_delta = shared_delta[local_row];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int local_key = s_col + j * 8 + 2 * t;
        float pv[2], dsv[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int key = key0 + local_key + e;
          const bool visible = key < p.seq_kv && (!p.causal || key <= query + causal_offset);
          pv[e] = visible ? tiles::fast_exp2(fmaf(s[j][2 * h + e], p.scale_log2, -row_lse)) : 0.0f;
          dsv[e] = pv[e] * (dp[j][2 * h + e] - row_delta);
        }
        const int index = local_row * Shape::p_stride + local_key;
        *reinterpret_cast<std::uint32_t*>(shared_p + index) = tiles::pack_bf16(pv[0], pv[1]);
        *reinterpret_cast<std::uint32_t*>(shared_ds + index) = tiles::pack_bf16(dsv[0], dsv[1]);
      }
    }
    __syncthreads();

    // dV += Pᵀ dO, dK += dSᵀ Q over this block's queries.
#pragma unroll
    for (int kk = 0; kk < block_queries / 16; ++kk) {
      std::uint32_t a[4];
      tiles::load_matrix_x4_transposed(a, p_at + tiles::tile_offset(Shape::p_stride, kk * 16, 0));
#pragma unroll
      for (int dp_tile = 0; dp_tile < v_dim / 32; ++dp_tile) {
        std::uint32_t b[4];
        tiles::load_matrix_x4_transposed(
            b, d_o_b + tiles::tile_offset(Shape::v_stride, kk * 16, dp_tile * 16));
        tiles::mma_bf16(acc_dv[2 * dp_tile], a, b[0], b[1]);
        tiles::mma_bf16(acc_dv[2 * dp_tile + 1], a, b[2], b[3]);
      }
      tiles::load_matrix_x4_transposed(a, ds_at + tiles::tile_offset(Shape::p_stride, kk * 16, 0));
#pragma unroll
      for (int dk_tile = 0; dk_tile < qk_dim / 32; ++dk_tile) {
        std::uint32_t b[4];
        tiles::load_matrix_x4_transposed(
            b, q_b + tiles::tile_offset(Shape::q_stride, kk * 16, dk_tile * 16));
        tiles::mma_bf16(acc_dk[2 * dk_tile], a, b[0], b[1]);
        tiles::mma_bf16(acc_dk[2 * dk_tile + 1], a, b[2], b[3]);
      }
    }
    // Q and dO of this block are no longer read: fetch the next while dQ is computed.
    __syncthreads();
    if (query_block + 1 < query_blocks) {
      const int next0 = query0 + block_queries;
      tiles::load_tile_async<block_queries, qk_dim, backward_threads>(shared_q, q + next0 * p.q_row,
                                                                      p.q_row, p.seq_q - next0);
      tiles::load_tile_async<block_queries, v_dim, backward_threads>(
          shared_d_o, d_o + next0 * p.o_row, p.o_row, p.seq_q - next0);
      tiles::commit_async();
    }

    // dQ += dS K (unscaled), added to the fp32 workspace.
    float acc_dq[qk_dim / 16][4];
#pragma unroll
    for (int j = 0; j < qk_dim / 16; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        acc_dq[j][e] = 0.0f;
      }
    }
#pragma unroll
    for (int kk = 0; kk < block_keys / 16; ++kk) {
      std::uint32_t a[4];
      tiles::load_matrix_x4(a, ds_a + kk * 32);
#pragma unroll
      for (int dq_tile = 0; dq_tile < qk_dim / 32; ++dq_tile) {
        std::uint32_t b[4];
        tiles::load_matrix_x4_transposed(
            b, k_kn + tiles::tile_offset(Shape::q_stride, kk * 16, dq_tile * 16));
        tiles::mma_bf16(acc_dq[2 * dq_tile], a, b[0], b[1]);
        tiles::mma_bf16(acc_dq[2 * dq_tile + 1], a, b[2], b[3]);
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int query = query0 + dq_row + g + 8 * h;
      if (query < p.seq_q) {
        float* row = dq_accum + query * p.q_row + dq_col + 2 * t;
#pragma unroll
        for (int j = 0; j < qk_dim / 16; ++j) {
          atomicAdd(row + j * 8, acc_dq[j][2 * h]);
          atomicAdd(row + j * 8 + 1, acc_dq[j][2 * h + 1]);
        }
      }
    }
  }

  // dK = scale · Σ dSᵀ Q. One query head per kv head: write bf16; else add into fp32 workspace.
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int key = key0 + kv_row + g + 8 * h;
    if (key >= p.seq_kv) {
      continue;
    }
    const std::int64_t k_at = batch * p.k_batch + key * p.k_row + kv_head * qk_dim + dk_col + 2 * t;
    const std::int64_t v_at = batch * p.v_batch + key * p.v_row + kv_head * v_dim + dv_col + 2 * t;
    if (p.kv_group == 1) {
#pragma unroll
      for (int j = 0; j < qk_dim / 16; ++j) {
        *reinterpret_cast<std::uint32_t*>(p.dk + k_at + j * 8) =
            tiles::pack_bf16(acc_dk[j][2 * h] * p.scale, acc_dk[j][2 * h + 1] * p.scale);
      }
#pragma unroll
      for (int j = 0; j < v_dim / 16; ++j) {
        *reinterpret_cast<std::uint32_t*>(p.dv + v_at + j * 8) =
            tiles::pack_bf16(acc_dv[j][2 * h], acc_dv[j][2 * h + 1]);
      }
    } else {
#pragma unroll
      for (int j = 0; j < qk_dim / 16; ++j) {
        atomicAdd(p.dk_accum + k_at + j * 8, acc_dk[j][2 * h] * p.scale);
        atomicAdd(p.dk_accum + k_at + j * 8 + 1, acc_dk[j][2 * h + 1] * p.scale);
      }
#pragma unroll
      for (int j = 0; j < v_dim / 16; ++j) {
        atomicAdd(p.dv_accum + v_at + j * 8, acc_dv[j][2 * h]);
        atomicAdd(p.dv_accum + v_at + j * 8 + 1, acc_dv[j][2 * h + 1]);
      }
    }
  }
}

// out = bf16(accum · factor), element-wise.
__global__ void scale_to_bf16_kernel(const float* accum, bf16* out, float factor,
                                     std::int64_t count) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    out[i] = __float2bfloat16_rn(accum[i] * factor);
  }
}

cudaError_t scale_to_bf16(const float* accum, bf16* out, float factor, std::int64_t count,
                          cudaStream_t stream) {
  constexpr int threads = 256;
  const std::int64_t blocks = std::min<std::int64_t>((count + threads - 1) / threads, 4096);
  scale_to_bf16_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(accum, out, factor,
                                                                              count);
  return cudaGetLastError();
}

// Workspace: dq accumulator, delta, then dK and dV accumulators when kv heads are shared; each
// part starts on a 256-byte boundary.
struct WorkspaceLayout {
  std::size_t dq_accum = 0, delta = 0, dk_accum = 0, dv_accum = 0, bytes = 0;
};

WorkspaceLayout workspace_layout(const AttentionDims& dims) {
  const auto aligned = [](std::size_t bytes) { return (bytes + 255) / 256 * 256; };
  const auto floats = [&](std::int64_t count) {
    return aligned(static_cast<std::size_t>(count) * sizeof(float));
  };
  const std::int64_t b = dims.batch;
  WorkspaceLayout layout;
  layout.dq_accum = 0;
  layout.delta = floats(b * dims.seq_q * dims.heads * dims.qk_head_dim);
  layout.dk_accum = layout.delta + floats(b * dims.heads * dims.seq_q);
  layout.dv_accum = layout.dk_accum;
  layout.bytes = layout.dk_accum;
  if (dims.heads != dims.kv_heads) {
    layout.dv_accum = layout.dk_accum + floats(b * dims.seq_kv * dims.kv_heads * dims.qk_head_dim);
    layout.bytes = layout.dv_accum + floats(b * dims.seq_kv * dims.kv_heads * dims.v_head_dim);
  }
  return layout;
}

template <int qk_dim, int v_dim>
cudaError_t launch_backward(const AttentionDims& dims, const BackwardParams& params, const bf16* o,
                            cudaStream_t stream) {
  const std::int64_t rows = static_cast<std::int64_t>(dims.batch) * dims.seq_q * dims.heads;
  constexpr int delta_threads = 256;
  const std::int64_t delta_blocks = (rows * 32 + delta_threads - 1) / delta_threads;
  attention_backward_delta_kernel<v_dim>
      <<<static_cast<unsigned>(delta_blocks), delta_threads, 0, stream>>>(
          o, params.d_o, const_cast<float*>(params.delta), dims.heads, dims.seq_q, rows);
  if (const cudaError_t error = cudaGetLastError(); error != cudaSuccess) {
    return error;
  }
  using Shape = BackwardShape<qk_dim, v_dim>;
  auto* kernel = attention_backward_kernel<qk_dim, v_dim>;
  static const cudaError_t configured = cudaFuncSetAttribute(
      kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Shape::shared_bytes);
  if (configured != cudaSuccess) {
    return configured;
  }
  const dim3 grid((dims.seq_kv + block_keys - 1) / block_keys, static_cast<unsigned>(dims.heads),
                  static_cast<unsigned>(dims.batch));
  kernel<<<grid, backward_threads, Shape::shared_bytes, stream>>>(params);
  return cudaGetLastError();
}

} // namespace

std::size_t attention_backward_workspace_bytes(const AttentionDims& dims) {
  return workspace_layout(dims).bytes;
}

cudaError_t attention_backward(const AttentionDims& dims, float softmax_scale, const bf16* q,
                               const bf16* k, const bf16* v, const bf16* o, const bf16* d_o,
                               const float* lse, bf16* dq, bf16* dk, bf16* dv, void* workspace,
                               cudaStream_t stream) {
  if (!attention_unsupported_reason(dims).empty()) {
    return cudaErrorInvalidValue;
  }
  const WorkspaceLayout layout = workspace_layout(dims);
  auto* bytes = static_cast<unsigned char*>(workspace);
  BackwardParams params{};
  params.q = q;
  params.k = k;
  params.v = v;
  params.d_o = d_o;
  params.lse = lse;
  params.delta = reinterpret_cast<float*>(bytes + layout.delta);
  params.dq_accum = reinterpret_cast<float*>(bytes + layout.dq_accum);
  params.dk_accum = reinterpret_cast<float*>(bytes + layout.dk_accum);
  params.dv_accum = reinterpret_cast<float*>(bytes + layout.dv_accum);
  params.dk = dk;
  params.dv = dv;
  params.heads = dims.heads;
  params.kv_group = dims.heads / dims.kv_heads;
  params.seq_q = dims.seq_q;
  params.seq_kv = dims.seq_kv;
  params.q_row = static_cast<std::int64_t>(dims.heads) * dims.qk_head_dim;
  params.k_row = static_cast<std::int64_t>(dims.kv_heads) * dims.qk_head_dim;
  params.v_row = static_cast<std::int64_t>(dims.kv_heads) * dims.v_head_dim;
  params.o_row = static_cast<std::int64_t>(dims.heads) * dims.v_head_dim;
  params.q_batch = params.q_row * dims.seq_q;
  params.k_batch = params.k_row * dims.seq_kv;
  params.v_batch = params.v_row * dims.seq_kv;
  params.o_batch = params.o_row * dims.seq_q;
  params.scale = softmax_scale;
  params.scale_log2 = softmax_scale * static_cast<float>(M_LOG2E);
  params.causal = dims.causal;

  // The accumulators start at zero: dK, dV up to the whole workspace tail when kv heads are shared.
  const std::size_t zeroed_tail = layout.bytes - layout.dk_accum;
  if (cudaError_t error = cudaMemsetAsync(bytes, 0, layout.delta, stream); error != cudaSuccess) {
    return error;
  }
  if (zeroed_tail > 0) {
    if (cudaError_t error = cudaMemsetAsync(bytes + layout.dk_accum, 0, zeroed_tail, stream);
        error != cudaSuccess) {
      return error;
    }
  }
  cudaError_t launched = cudaSuccess;
  switch (dims.qk_head_dim) {
  case 64:
    launched = launch_backward<64, 64>(dims, params, o, stream);
    break;
  case 128:
    launched = launch_backward<128, 128>(dims, params, o, stream);
    break;
  default: // 192 with v 128
    launched = launch_backward<192, 128>(dims, params, o, stream);
    break;
  }
  if (launched != cudaSuccess) {
    return launched;
  }
  const std::int64_t q_count =
      static_cast<std::int64_t>(dims.batch) * dims.seq_q * dims.heads * dims.qk_head_dim;
  if (cudaError_t error = scale_to_bf16(params.dq_accum, dq, softmax_scale, q_count, stream);
      error != cudaSuccess) {
    return error;
  }
  if (dims.heads != dims.kv_heads) {
    const std::int64_t kv = static_cast<std::int64_t>(dims.batch) * dims.seq_kv * dims.kv_heads;
    if (cudaError_t error = scale_to_bf16(params.dk_accum, dk, 1.0f, kv * dims.qk_head_dim, stream);
        error != cudaSuccess) {
      return error;
    }
    return scale_to_bf16(params.dv_accum, dv, 1.0f, kv * dims.v_head_dim, stream);
  }
  return cudaSuccess;
}

} // namespace foldplan::kernels
