// Routing and permutation kernels of the MoE layer; moe_reference.cpp is their CPU twin.
#include "kernels/moe_routing.hpp"

#include <cub/block/block_scan.cuh>

namespace foldplan::kernels {

namespace {

constexpr int kMaxTopK = 16;
constexpr int kPlanThreads = 256;

__global__ void topk_softmax_kernel(const float* logits, const float* expert_bias,
                                    std::int64_t tokens, int experts, int top_k,
                                    std::int32_t* topk_experts, float* topk_probs) {
  const std::int64_t token = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (token >= tokens)
    return;
  const float* row = logits + token * experts;
  int chosen[kMaxTopK];
  float chosen_logit[kMaxTopK];
  for (int j = 0; j < top_k; ++j) {
    int best = -1;
    float best_logit = 0;
    for (int expert = 0; expert < experts; ++expert) {
      bool taken = false;
      for (int i = 0; i < j; ++i)
        taken = taken || chosen[i] == expert;
      const float logit = row[expert] - (expert_bias ? expert_bias[expert] : 0.0f);
      // Strictly greater: ties go to the lower expert, as the reference's stable sort.
      if (!taken && (best < 0 || logit > best_logit)) {
        best = expert;
        best_logit = logit;
      }
    }
    chosen[j] = best;
    chosen_logit[j] = best_logit;
  }
  // The largest (the first) subtracted for stability, as the reference does.
  const float largest = chosen_logit[0];
  float total = 0;
  for (int j = 0; j < top_k; ++j) {
    chosen_logit[j] = expf(chosen_logit[j] - largest);
    total += chosen_logit[j];
  }
  for (int j = 0; j < top_k; ++j) {
    topk_experts[token * top_k + j] = chosen[j];
    topk_probs[token * top_k + j] = chosen_logit[j] / total;
  }
}

using PlanScan = cub::BlockScan<int, kPlanThreads>;

// One block per expert: its routed tokens in token order, then the capacity rule.
__global__ void expert_candidates_kernel(MoeRoutingDims dims, MoeRoutingBuffers buffers) {
  __shared__ typename PlanScan::TempStorage scan_storage;
  const int expert = blockIdx.x;
  std::int32_t* tokens_of_expert = buffers.expert_tokens + expert * dims.tokens;
  float* probs_of_expert = buffers.expert_probs + expert * dims.tokens;

  // Pass 1: compact the tokens that chose this expert, in token order.
  int count = 0;
  for (std::int64_t chunk = 0; chunk < dims.tokens; chunk += kPlanThreads) {
    const std::int64_t token = chunk + threadIdx.x;
    float prob = 0;
    int routed = 0;
    if (token < dims.tokens) {
      for (int j = 0; j < dims.top_k; ++j) {
        if (buffers.topk_experts[token * dims.top_k + j] == expert) {
          routed = 1;
          prob = buffers.topk_probs[token * dims.top_k + j];
        }
      }
    }
    int position = 0;
    int chunk_total = 0;
    PlanScan(scan_storage).ExclusiveSum(routed, position, chunk_total);
    __syncthreads();
    if (routed) {
      tokens_of_expert[count + position] = static_cast<std::int32_t>(token);
      probs_of_expert[count + position] = prob;
    }
    count += chunk_total;
  }
  __syncthreads();

  int kept = count;
  if (dims.capacity >= 0 && count > dims.capacity) {
    kept = static_cast<int>(dims.capacity);
    if (!dims.drop_by_position) {
      // "probs": a candidate survives when fewer than `capacity` candidates beat it (a higher
      // prob, or an equal prob on an earlier token). Losers are marked, then squeezed out.
      for (int i = threadIdx.x; i < count; i += kPlanThreads) {
        const float prob = probs_of_expert[i];
        int beaten_by = 0;
        for (int other = 0; other < count; ++other) {
          const float other_prob = probs_of_expert[other];
          beaten_by += (other_prob > prob || (other_prob == prob && other < i)) ? 1 : 0;
        }
        if (beaten_by >= dims.capacity)
          tokens_of_expert[i] = -1;
      }
      __syncthreads();
      int written = 0;
      for (int chunk = 0; chunk < count; chunk += kPlanThreads) {
        const int i = chunk + static_cast<int>(threadIdx.x);
        std::int32_t token = -1;
        float prob = 0;
        if (i < count) {
          token = tokens_of_expert[i];
          prob = probs_of_expert[i];
        }
        const int keep = token >= 0 ? 1 : 0;
        int position = 0;
        int chunk_total = 0;
        PlanScan(scan_storage).ExclusiveSum(keep, position, chunk_total);
        __syncthreads(); // every read of this chunk precedes the writes, which land at or before it
        if (keep) {
          tokens_of_expert[written + position] = token;
          probs_of_expert[written + position] = prob;
        }
        written += chunk_total;
        __syncthreads();
      }
    }
    // "position": the first `capacity` candidates in token order are already in place.
  }
  if (threadIdx.x == 0) {
    buffers.kept_per_expert[expert] = kept;
    buffers.rows_per_expert[expert] =
        dims.capacity >= 0 && dims.pad_to_capacity ? static_cast<int>(dims.capacity) : kept;
  }
}

// One block per expert: its rows of the permuted buffer.
__global__ void expert_rows_kernel(MoeRoutingDims dims, MoeRoutingBuffers buffers) {
  __shared__ std::int64_t offset;
  const int expert = blockIdx.x;
  if (threadIdx.x == 0) {
    std::int64_t sum = 0;
    for (int before = 0; before < expert; ++before)
      sum += buffers.rows_per_expert[before];
    offset = sum;
  }
  __syncthreads();
  const int kept = buffers.kept_per_expert[expert];
  const int rows = buffers.rows_per_expert[expert];
  const std::int32_t* tokens_of_expert = buffers.expert_tokens + expert * dims.tokens;
  const float* probs_of_expert = buffers.expert_probs + expert * dims.tokens;
  for (int i = threadIdx.x; i < rows; i += blockDim.x) {
    const std::int64_t row = offset + i;
    if (i < kept) {
      const std::int32_t token = tokens_of_expert[i];
      buffers.row_token[row] = token;
      buffers.row_prob[row] = probs_of_expert[i];
      for (int j = 0; j < dims.top_k; ++j) {
        if (buffers.topk_experts[token * static_cast<std::int64_t>(dims.top_k) + j] == expert)
          buffers.choice_row[token * static_cast<std::int64_t>(dims.top_k) + j] =
              static_cast<std::int32_t>(row);
      }
    } else {
      buffers.row_token[row] = -1;
      buffers.row_prob[row] = 0;
    }
  }
}

constexpr int kVector = 8; // bf16 per 16-byte load

__global__ void permute_kernel(const uint4* tokens, std::int64_t vectors_per_row,
                               const std::int32_t* row_token, uint4* out) {
  const std::int64_t row = blockIdx.x;
  const std::int32_t token = row_token[row];
  for (std::int64_t v = threadIdx.x; v < vectors_per_row; v += blockDim.x)
    out[row * vectors_per_row + v] =
        token >= 0 ? tokens[token * vectors_per_row + v] : make_uint4(0, 0, 0, 0);
}

__device__ void store(__nv_bfloat16* out, const float* values) {
  __align__(16) __nv_bfloat16 packed[kVector];
  for (int i = 0; i < kVector; ++i)
    packed[i] = __float2bfloat16(values[i]);
  *reinterpret_cast<uint4*>(out) = *reinterpret_cast<const uint4*>(packed);
}
__device__ void store(float* out, const float* values) {
  for (int i = 0; i < kVector; ++i)
    out[i] = values[i];
}

template <typename Out>
__global__ void unpermute_kernel(const __nv_bfloat16* rows, std::int64_t hidden, int top_k,
                                 const std::int32_t* choice_row, const float* topk_probs,
                                 Out* out) {
  const std::int64_t token = blockIdx.x;
  for (std::int64_t h = threadIdx.x * static_cast<std::int64_t>(kVector); h < hidden;
       h += blockDim.x * static_cast<std::int64_t>(kVector)) {
    float sum[kVector] = {};
    for (int j = 0; j < top_k; ++j) {
      const std::int32_t row = choice_row[token * top_k + j];
      if (row < 0)
        continue;
      const float weight = topk_probs ? topk_probs[token * top_k + j] : 1.0f;
      __align__(16) __nv_bfloat16 values[kVector];
      *reinterpret_cast<uint4*>(values) = *reinterpret_cast<const uint4*>(rows + row * hidden + h);
      for (int i = 0; i < kVector; ++i)
        sum[i] += weight * __bfloat162float(values[i]);
    }
    store(out + token * hidden + h, sum);
  }
}

int blocks_for(std::int64_t items, int threads) {
  return static_cast<int>((items + threads - 1) / threads);
}

} // namespace

std::int64_t moe_max_rows(const MoeRoutingDims& dims) {
  const std::int64_t routed = dims.tokens * dims.top_k;
  if (dims.capacity >= 0 && dims.pad_to_capacity)
    return dims.capacity * dims.experts > routed ? dims.capacity * dims.experts : routed;
  return routed;
}

cudaError_t moe_topk_softmax(const MoeRoutingDims& dims, const float* logits,
                             const float* expert_bias, const MoeRoutingBuffers& buffers,
                             cudaStream_t stream) {
  if (dims.top_k < 1 || dims.top_k > kMaxTopK || dims.top_k > dims.experts)
    return cudaErrorInvalidValue;
  if (dims.tokens == 0)
    return cudaSuccess;
  constexpr int threads = 128;
  topk_softmax_kernel<<<blocks_for(dims.tokens, threads), threads, 0, stream>>>(
      logits, expert_bias, dims.tokens, dims.experts, dims.top_k, buffers.topk_experts,
      buffers.topk_probs);
  return cudaGetLastError();
}

cudaError_t moe_dispatch_plan(const MoeRoutingDims& dims, const MoeRoutingBuffers& buffers,
                              cudaStream_t stream) {
  cudaError_t status = cudaMemsetAsync(buffers.choice_row, 0xFF,
                                       sizeof(std::int32_t) * dims.tokens * dims.top_k, stream);
  if (status != cudaSuccess)
    return status;
  expert_candidates_kernel<<<dims.experts, kPlanThreads, 0, stream>>>(dims, buffers);
  expert_rows_kernel<<<dims.experts, kPlanThreads, 0, stream>>>(dims, buffers);
  return cudaGetLastError();
}

cudaError_t moe_permute(const __nv_bfloat16* tokens, std::int64_t hidden,
                        const std::int32_t* row_token, std::int64_t rows, __nv_bfloat16* out,
                        cudaStream_t stream) {
  if (hidden % kVector != 0)
    return cudaErrorInvalidValue;
  if (rows == 0)
    return cudaSuccess;
  permute_kernel<<<static_cast<unsigned>(rows), 128, 0, stream>>>(
      reinterpret_cast<const uint4*>(tokens), hidden / kVector, row_token,
      reinterpret_cast<uint4*>(out));
  return cudaGetLastError();
}

template <typename Out>
static cudaError_t launch_unpermute(const __nv_bfloat16* rows, std::int64_t hidden,
                                    std::int64_t tokens, int top_k, const std::int32_t* choice_row,
                                    const float* topk_probs, Out* out, cudaStream_t stream) {
  if (hidden % kVector != 0)
    return cudaErrorInvalidValue;
  if (tokens == 0)
    return cudaSuccess;
  unpermute_kernel<Out><<<static_cast<unsigned>(tokens), 128, 0, stream>>>(
      rows, hidden, top_k, choice_row, topk_probs, out);
  return cudaGetLastError();
}

cudaError_t moe_unpermute(const __nv_bfloat16* rows, std::int64_t hidden, std::int64_t tokens,
                          int top_k, const std::int32_t* choice_row, const float* topk_probs,
                          __nv_bfloat16* out, cudaStream_t stream) {
  return launch_unpermute(rows, hidden, tokens, top_k, choice_row, topk_probs, out, stream);
}

cudaError_t moe_unpermute(const __nv_bfloat16* rows, std::int64_t hidden, std::int64_t tokens,
                          int top_k, const std::int32_t* choice_row, const float* topk_probs,
                          float* out, cudaStream_t stream) {
  return launch_unpermute(rows, hidden, tokens, top_k, choice_row, topk_probs, out, stream);
}

} // namespace foldplan::kernels
