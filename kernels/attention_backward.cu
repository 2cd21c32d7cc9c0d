// FlashAttention-2's backward (Dao 2023, Algorithm 2): each block owns a tile of keys of one query
// head and walks the query tiles that see it, recomputing P = exp(scale·QKᵀ − lse) from the
// forward's log-sum-exp. dV += Pᵀ dO and dK += dSᵀ Q stay in registers; dQ += dS K is added
// atomically to an fp32 workspace, converted to bf16 at the end. dS = P ∘ (dP − delta) with
// dP = dO Vᵀ and delta = rowsum(dO ∘ O), computed first by a small kernel. With grouped-query
// heads the query heads of a kv head add their dK, dV into fp32 workspace too.
#include <cmath>

#include "kernels/attention.hpp"
#include "kernels/attention_launch.hpp"
#include "kernels/attention_params.cuh"
#include "kernels/attention_tiles.cuh"

namespace foldplan::kernels {
namespace {

using tiles::bf16;

struct BackwardParams : AttentionCallParams {
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
};

// Tile shapes of one backward block: `block_queries` × `block_keys` scores, `warps` warps laid out
// per product as warps_m (first operand rows) × warps / warps_m. Each warp's tile is a multiple of
// 16 × 16, so one A fragment feeds several MMAs and one B fragment several rows.
template <int qk_dim_, int v_dim_, int block_queries_, int block_keys_, int warps_, int s_warps_m_,
          int kv_warps_n_, int dq_warps_m_, bool double_buffer_, int min_blocks_>
struct BackwardShape {
  static constexpr int qk_dim = qk_dim_, v_dim = v_dim_;
  static constexpr int block_queries = block_queries_, block_keys = block_keys_;
  static constexpr int warps = warps_, threads = warps_ * 32, min_blocks = min_blocks_;
  static constexpr bool double_buffer = double_buffer_;
  // S, dP: queries × keys.
  static constexpr int s_rows = block_queries / s_warps_m_;
  static constexpr int s_cols = block_keys / (warps / s_warps_m_);
  static constexpr int s_row_tiles = s_rows / 16, s_col_tiles = s_cols / 8;
  // dK, dV: keys × dims.
  static constexpr int kv_rows = block_keys / kv_warps_n_;
  static constexpr int kv_row_tiles = kv_rows / 16;
  static constexpr int dk_cols = qk_dim / (warps / kv_warps_n_);
  static constexpr int dv_cols = v_dim / (warps / kv_warps_n_);
  // dQ: queries × dims.
  static constexpr int dq_rows = block_queries / dq_warps_m_;
  static constexpr int dq_row_tiles = dq_rows / 16;
  static constexpr int dq_cols = qk_dim / (warps / dq_warps_m_);
  static_assert(s_rows % 16 == 0 && s_cols % 16 == 0 && kv_rows % 16 == 0 && dk_cols % 16 == 0 &&
                    dv_cols % 16 == 0 && dq_rows % 16 == 0 && dq_cols % 16 == 0,
                "warp tiles are multiples of 16 × 16");

  static constexpr int q_stride = qk_dim + tiles::pad;
  static constexpr int v_stride = v_dim + tiles::pad;
  static constexpr int p_stride = block_keys + tiles::pad;
  static constexpr int buffers = double_buffer ? 2 : 1;
  static constexpr int q_elements = block_queries * q_stride;
  static constexpr int d_o_elements = block_queries * v_stride;
  static constexpr int k_elements = block_keys * q_stride;
  static constexpr int v_elements = block_keys * v_stride;
  static constexpr int p_elements = block_queries * p_stride;
  static constexpr int bf16_elements =
      buffers * (q_elements + d_o_elements) + k_elements + v_elements + 2 * p_elements;
  static constexpr int shared_bytes =
      static_cast<int>(sizeof(bf16)) * bf16_elements + 2 * block_queries * 4;
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

// acc[rows][cols] += A B over `depth`: A fragments at a_address (+ 16 rows per row tile, + 16
// columns per k step, both in `a_stride` elements, transposed when a_transposed), two B n-tiles
// per ldmatrix at b_address (+16 n per pair, +16 k per step).
template <int row_tiles, int col_tiles, int depth, bool a_transposed, bool b_transposed>
__device__ __forceinline__ void warp_product(float (&acc)[row_tiles][col_tiles][4],
                                             std::uint32_t a_address, int a_stride,
                                             std::uint32_t b_address, int b_stride) {
#pragma unroll
  for (int kk = 0; kk < depth / 16; ++kk) {
    std::uint32_t a[row_tiles][4];
#pragma unroll
    for (int mt = 0; mt < row_tiles; ++mt) {
      if constexpr (a_transposed) { // stored [k][m]
        tiles::load_matrix_x4_transposed(a[mt], a_address +
                                                    tiles::tile_offset(a_stride, kk * 16, mt * 16));
      } else {
        tiles::load_matrix_x4(a[mt], a_address + tiles::tile_offset(a_stride, mt * 16, kk * 16));
      }
    }
#pragma unroll
    for (int np = 0; np < col_tiles / 2; ++np) {
      std::uint32_t b[4];
      if constexpr (b_transposed) { // stored [k][n]
        tiles::load_matrix_x4_transposed(b, b_address +
                                                tiles::tile_offset(b_stride, kk * 16, np * 16));
      } else { // stored [n][k]
        tiles::load_matrix_x4(b, b_address + tiles::tile_offset(b_stride, np * 16, kk * 16));
      }
#pragma unroll
      for (int mt = 0; mt < row_tiles; ++mt) {
        tiles::mma_bf16(acc[mt][2 * np], a[mt], b[0], b[1]);
        tiles::mma_bf16(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
      }
    }
  }
}

template <typename Shape>
__global__ void __launch_bounds__(Shape::threads, Shape::min_blocks)
    attention_backward_kernel(const BackwardParams p) {
  constexpr int qk_dim = Shape::qk_dim, v_dim = Shape::v_dim;
  constexpr int block_queries = Shape::block_queries, block_keys = Shape::block_keys;
  constexpr int threads = Shape::threads;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  bf16* shared_k = reinterpret_cast<bf16*>(shared_bytes);
  bf16* shared_v = shared_k + Shape::k_elements;
  bf16* shared_p = shared_v + Shape::v_elements;
  bf16* shared_ds = shared_p + Shape::p_elements;
  bf16* shared_q = shared_ds + Shape::p_elements;                   // `buffers` tiles
  bf16* shared_d_o = shared_q + Shape::buffers * Shape::q_elements; // `buffers` tiles
  float* shared_lse =
      reinterpret_cast<float*>(shared_d_o + Shape::buffers * Shape::d_o_elements); // log2 domain
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

  // This warp's tiles in each product.
  constexpr int s_warps_n = block_keys / Shape::s_cols;
  const int s_row = (warp / s_warps_n) * Shape::s_rows, s_col = (warp % s_warps_n) * Shape::s_cols;
  constexpr int kv_warps_d = qk_dim / Shape::dk_cols;
  const int kv_row = (warp / kv_warps_d) * Shape::kv_rows;
  const int dk_col = (warp % kv_warps_d) * Shape::dk_cols;
  const int dv_col = (warp % kv_warps_d) * Shape::dv_cols;
  constexpr int dq_warps_d = qk_dim / Shape::dq_cols;
  const int dq_row = (warp / dq_warps_d) * Shape::dq_rows;
  const int dq_col = (warp % dq_warps_d) * Shape::dq_cols;

  float acc_dk[Shape::kv_row_tiles][Shape::dk_cols / 8][4];
  float acc_dv[Shape::kv_row_tiles][Shape::dv_cols / 8][4];
  tiles::zero(acc_dk);
  tiles::zero(acc_dv);

  const auto address = [](const bf16* tile) { return tiles::shared_address(tile); };
  // Lane addresses of each product's operands (buffer 0 for Q and dO).
  const std::uint32_t q_a = address(shared_q) + tiles::tile_offset(Shape::q_stride, s_row, 0) +
                            tiles::a_lane_offset(Shape::q_stride, lane);
  const std::uint32_t d_o_a = address(shared_d_o) + tiles::tile_offset(Shape::v_stride, s_row, 0) +
                              tiles::a_lane_offset(Shape::v_stride, lane);
  const std::uint32_t k_b = address(shared_k) + tiles::tile_offset(Shape::q_stride, s_col, 0) +
                            tiles::b_nk_lane_offset(Shape::q_stride, lane);
  const std::uint32_t v_b = address(shared_v) + tiles::tile_offset(Shape::v_stride, s_col, 0) +
                            tiles::b_nk_lane_offset(Shape::v_stride, lane);
  const std::uint32_t p_at = address(shared_p) + tiles::tile_offset(Shape::p_stride, 0, kv_row) +
                             tiles::a_km_lane_offset(Shape::p_stride, lane);
  const std::uint32_t ds_at = address(shared_ds) + tiles::tile_offset(Shape::p_stride, 0, kv_row) +
                              tiles::a_km_lane_offset(Shape::p_stride, lane);
  const std::uint32_t d_o_b = address(shared_d_o) + tiles::tile_offset(Shape::v_stride, 0, dv_col) +
                              tiles::b_kn_lane_offset(Shape::v_stride, lane);
  const std::uint32_t q_b = address(shared_q) + tiles::tile_offset(Shape::q_stride, 0, dk_col) +
                            tiles::b_kn_lane_offset(Shape::q_stride, lane);
  const std::uint32_t ds_a = address(shared_ds) + tiles::tile_offset(Shape::p_stride, dq_row, 0) +
                             tiles::a_lane_offset(Shape::p_stride, lane);
  const std::uint32_t k_kn = address(shared_k) + tiles::tile_offset(Shape::q_stride, 0, dq_col) +
                             tiles::b_kn_lane_offset(Shape::q_stride, lane);

  const auto load_queries = [&](int query_block, int buffer) {
    const int query0 = query_block * block_queries;
    tiles::load_tile_async<block_queries, qk_dim, threads>(
        shared_q + buffer * Shape::q_elements, q + query0 * p.q_row, p.q_row, p.seq_q - query0);
    tiles::load_tile_async<block_queries, v_dim, threads>(shared_d_o + buffer * Shape::d_o_elements,
                                                          d_o + query0 * p.o_row, p.o_row,
                                                          p.seq_q - query0);
  };

  if (first_query_block < query_blocks) {
    tiles::load_tile_async<block_keys, qk_dim, threads>(shared_k, k, p.k_row, p.seq_kv - key0);
    tiles::load_tile_async<block_keys, v_dim, threads>(shared_v, v, p.v_row, p.seq_kv - key0);
    load_queries(first_query_block, 0);
    tiles::commit_async();
  }

  for (int query_block = first_query_block; query_block < query_blocks; ++query_block) {
    const int query0 = query_block * block_queries;
    const int buffer = Shape::double_buffer ? (query_block - first_query_block) % 2 : 0;
    const std::uint32_t q_offset = buffer * Shape::q_elements * 2;
    const std::uint32_t d_o_offset = buffer * Shape::d_o_elements * 2;
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
    if (Shape::double_buffer && query_block + 1 < query_blocks) {
      load_queries(query_block + 1, 1 - buffer); // read last in the previous iteration
      tiles::commit_async();
    }

    // S = Q Kᵀ, dP = dO Vᵀ.
    float s[Shape::s_row_tiles][Shape::s_col_tiles][4];
    float dp[Shape::s_row_tiles][Shape::s_col_tiles][4];
    tiles::zero(s);
    tiles::zero(dp);
    warp_product<Shape::s_row_tiles, Shape::s_col_tiles, qk_dim, false, false>(
        s, q_a + q_offset, Shape::q_stride, k_b, Shape::q_stride);
    warp_product<Shape::s_row_tiles, Shape::s_col_tiles, v_dim, false, false>(
        dp, d_o_a + d_o_offset, Shape::v_stride, v_b, Shape::v_stride);

    // P = exp2(S·scale·log2 e − lse·log2 e) with the mask; dS = P ∘ (dP − delta). Both go to
    // shared memory as bf16 for the transposed products.
#pragma unroll
    for (int mt = 0; mt < Shape::s_row_tiles; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int local_row = s_row + mt * 16 + g + 8 * h;
        const int query = query0 + local_row;
        const float row_lse = shared_lse[local_row];
        const float row_delta = shared_delta[local_row];
#pragma unroll
        for (int j = 0; j < Shape::s_col_tiles; ++j) {
          const int local_key = s_col + j * 8 + 2 * t;
          float pv[2], dsv[2];
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int key = key0 + local_key + e;
            const bool visible = key < p.seq_kv && (!p.causal || key <= query + causal_offset);
            pv[e] = visible ? tiles::fast_exp2(fmaf(s[mt][j][2 * h + e], p.scale_log2, -row_lse))
                            : 0.0f;
            dsv[e] = pv[e] * (dp[mt][j][2 * h + e] - row_delta);
          }
          const int index = local_row * Shape::p_stride + local_key;
          *reinterpret_cast<std::uint32_t*>(shared_p + index) = tiles::pack_bf16(pv[0], pv[1]);
          *reinterpret_cast<std::uint32_t*>(shared_ds + index) = tiles::pack_bf16(dsv[0], dsv[1]);
        }
      }
    }
    __syncthreads();

    // dV += Pᵀ dO, dK += dSᵀ Q over this block's queries.
    warp_product<Shape::kv_row_tiles, Shape::dv_cols / 8, block_queries, true, true>(
        acc_dv, p_at, Shape::p_stride, d_o_b + d_o_offset, Shape::v_stride);
    warp_product<Shape::kv_row_tiles, Shape::dk_cols / 8, block_queries, true, true>(
        acc_dk, ds_at, Shape::p_stride, q_b + q_offset, Shape::q_stride);
    if (!Shape::double_buffer) {
      // Q and dO of this block are no longer read: fetch the next while dQ is computed.
      __syncthreads();
      if (query_block + 1 < query_blocks) {
        load_queries(query_block + 1, 0);
        tiles::commit_async();
      }
    }

    // dQ += dS K (unscaled), added to the fp32 workspace two columns at a time.
    float acc_dq[Shape::dq_row_tiles][Shape::dq_cols / 8][4];
    tiles::zero(acc_dq);
    warp_product<Shape::dq_row_tiles, Shape::dq_cols / 8, block_keys, false, true>(
        acc_dq, ds_a, Shape::p_stride, k_kn, Shape::q_stride);
#pragma unroll
    for (int mt = 0; mt < Shape::dq_row_tiles; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int query = query0 + dq_row + mt * 16 + g + 8 * h;
        if (query < p.seq_q) {
          float* row = dq_accum + query * p.q_row + dq_col + 2 * t;
#pragma unroll
          for (int j = 0; j < Shape::dq_cols / 8; ++j) {
            atomicAdd(reinterpret_cast<float2*>(row + j * 8),
                      make_float2(acc_dq[mt][j][2 * h], acc_dq[mt][j][2 * h + 1]));
          }
        }
      }
    }
  }

  // dK = scale · Σ dSᵀ Q. One query head per kv head: write bf16; else add into fp32 workspace.
#pragma unroll
  for (int mt = 0; mt < Shape::kv_row_tiles; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int key = key0 + kv_row + mt * 16 + g + 8 * h;
      if (key >= p.seq_kv) {
        continue;
      }
      const std::int64_t k_at =
          batch * p.k_batch + key * p.k_row + kv_head * qk_dim + dk_col + 2 * t;
      const std::int64_t v_at =
          batch * p.v_batch + key * p.v_row + kv_head * v_dim + dv_col + 2 * t;
      if (p.kv_group == 1) {
#pragma unroll
        for (int j = 0; j < Shape::dk_cols / 8; ++j) {
          *reinterpret_cast<std::uint32_t*>(p.dk + k_at + j * 8) =
              tiles::pack_bf16(acc_dk[mt][j][2 * h] * p.scale, acc_dk[mt][j][2 * h + 1] * p.scale);
        }
#pragma unroll
        for (int j = 0; j < Shape::dv_cols / 8; ++j) {
          *reinterpret_cast<std::uint32_t*>(p.dv + v_at + j * 8) =
              tiles::pack_bf16(acc_dv[mt][j][2 * h], acc_dv[mt][j][2 * h + 1]);
        }
      } else {
#pragma unroll
        for (int j = 0; j < Shape::dk_cols / 8; ++j) {
          atomicAdd(
              reinterpret_cast<float2*>(p.dk_accum + k_at + j * 8),
              make_float2(acc_dk[mt][j][2 * h] * p.scale, acc_dk[mt][j][2 * h + 1] * p.scale));
        }
#pragma unroll
        for (int j = 0; j < Shape::dv_cols / 8; ++j) {
          atomicAdd(reinterpret_cast<float2*>(p.dv_accum + v_at + j * 8),
                    make_float2(acc_dv[mt][j][2 * h], acc_dv[mt][j][2 * h + 1]));
        }
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

template <typename Shape>
cudaError_t launch_backward(const AttentionDims& dims, const BackwardParams& params, const bf16* o,
                            cudaStream_t stream) {
  const std::int64_t rows = static_cast<std::int64_t>(dims.batch) * dims.seq_q * dims.heads;
  constexpr int delta_threads = 256;
  const std::int64_t delta_blocks = (rows * 32 + delta_threads - 1) / delta_threads;
  attention_backward_delta_kernel<Shape::v_dim>
      <<<static_cast<unsigned>(delta_blocks), delta_threads, 0, stream>>>(
          o, params.d_o, const_cast<float*>(params.delta), dims.heads, dims.seq_q, rows);
  if (const cudaError_t error = cudaGetLastError(); error != cudaSuccess) {
    return error;
  }
  auto* kernel = attention_backward_kernel<Shape>;
  // Per launch, not once per process: the attribute belongs to the current device, and a process
  // that drives several GPUs (one thread each) must set it on every one of them.
  const cudaError_t configured = cudaFuncSetAttribute(
      kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Shape::shared_bytes);
  if (configured != cudaSuccess) {
    return configured;
  }
  const dim3 grid((dims.seq_kv + Shape::block_keys - 1) / Shape::block_keys,
                  static_cast<unsigned>(dims.heads), static_cast<unsigned>(dims.batch));
  kernel<<<grid, Shape::threads, Shape::shared_bytes, stream>>>(params);
  return cudaGetLastError();
}

template <int qk_dim, int v_dim>
cudaError_t launch_backward_tiles(AttentionBackwardTiles tiles, const AttentionDims& dims,
                                  const BackwardParams& params, const bf16* o,
                                  cudaStream_t stream) {
  // Up to head dim 128, registers and shared memory allow two blocks of the 64-key shapes per
  // multiprocessor; 192 runs only the 8-warp one.
  if constexpr (qk_dim > 128) {
    return launch_backward<BackwardShape<qk_dim, v_dim, 64, 64, 8, 4, 4, 4, false, 1>>(dims, params,
                                                                                       o, stream);
  } else {
    switch (tiles) {
    case AttentionBackwardTiles::keys64_warps8:
      return launch_backward<BackwardShape<qk_dim, v_dim, 64, 64, 8, 4, 4, 4, false, 2>>(
          dims, params, o, stream);
    case AttentionBackwardTiles::keys64_warps4:
      return launch_backward<BackwardShape<qk_dim, v_dim, 64, 64, 4, 2, 2, 2, false, 2>>(
          dims, params, o, stream);
    default:
      return launch_backward<BackwardShape<qk_dim, v_dim, 64, 128, 8, 2, 4, 2, true, 1>>(
          dims, params, o, stream);
    }
  }
}

} // namespace

std::size_t attention_backward_workspace_bytes(const AttentionDims& dims) {
  return workspace_layout(dims).bytes;
}

cudaError_t attention_backward(const AttentionDims& dims, float softmax_scale, const bf16* q,
                               const bf16* k, const bf16* v, const bf16* o, const bf16* d_o,
                               const float* lse, bf16* dq, bf16* dk, bf16* dv, void* workspace,
                               cudaStream_t stream) {
  return attention_backward_with_tiles(default_attention_backward_tiles, dims, softmax_scale, q, k,
                                       v, o, d_o, lse, dq, dk, dv, workspace, stream);
}

cudaError_t attention_backward_with_tiles(AttentionBackwardTiles tiles, const AttentionDims& dims,
                                          float softmax_scale, const bf16* q, const bf16* k,
                                          const bf16* v, const bf16* o, const bf16* d_o,
                                          const float* lse, bf16* dq, bf16* dk, bf16* dv,
                                          void* workspace, cudaStream_t stream) {
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
  static_cast<AttentionCallParams&>(params) = attention_call_params(dims, softmax_scale);

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
    launched = launch_backward_tiles<64, 64>(tiles, dims, params, o, stream);
    break;
  case 128:
    launched = launch_backward_tiles<128, 128>(tiles, dims, params, o, stream);
    break;
  default: // 192 with v 128
    launched = launch_backward_tiles<192, 128>(tiles, dims, params, o, stream);
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
