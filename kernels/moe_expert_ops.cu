// Seeded random fills and the FFN activation for the MoE layer's experts.
#include "kernels/moe_expert_ops.hpp"

#include "kernels/moe_random.hpp"

namespace foldplan::kernels {

namespace {

__global__ void fill_kernel(RandomMatrixSlice slice, std::uint64_t seed, std::uint64_t stream_id,
                            float scale, __nv_bfloat16* out) {
  const std::int64_t count = slice.rows * slice.cols;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t row = i / slice.cols;
    const std::int64_t col = i % slice.cols;
    const std::int64_t global_row = row < slice.split_row
                                        ? slice.low_row_offset + row
                                        : slice.high_row_offset + (row - slice.split_row);
    const auto index =
        static_cast<std::uint64_t>(global_row * slice.global_cols + slice.col_offset + col);
    out[i] = __float2bfloat16(moe_random_value(seed, stream_id, index, scale));
  }
}

__global__ void activation_kernel(const __nv_bfloat16* fc1_out, std::int64_t rows, std::int64_t ffn,
                                  bool gated, __nv_bfloat16* out) {
  const std::int64_t count = rows * ffn;
  const std::int64_t fc1_cols = gated ? 2 * ffn : ffn;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t row = i / ffn;
    const std::int64_t col = i % ffn;
    const float first = __bfloat162float(fc1_out[row * fc1_cols + col]);
    float value;
    if (gated) {
      const float up = __bfloat162float(fc1_out[row * fc1_cols + ffn + col]);
      value = first / (1.0f + expf(-first)) * up;
    } else {
      value = 0.5f * first * (1.0f + erff(first * 0.70710678118654752f));
    }
    out[i] = __float2bfloat16(value);
  }
}

constexpr int kThreads = 256;
constexpr std::int64_t kMaxBlocks = 132 * 16;

unsigned blocks_for(std::int64_t count) {
  const std::int64_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

} // namespace

cudaError_t fill_moe_random(const RandomMatrixSlice& slice, std::uint64_t seed,
                            std::uint64_t stream_id, float scale, __nv_bfloat16* out,
                            cudaStream_t stream) {
  const std::int64_t count = slice.rows * slice.cols;
  if (count == 0)
    return cudaSuccess;
  fill_kernel<<<blocks_for(count), kThreads, 0, stream>>>(slice, seed, stream_id, scale, out);
  return cudaGetLastError();
}

cudaError_t moe_activation(const __nv_bfloat16* fc1_out, std::int64_t rows, std::int64_t ffn,
                           bool gated, __nv_bfloat16* out, cudaStream_t stream) {
  const std::int64_t count = rows * ffn;
  if (count == 0)
    return cudaSuccess;
  activation_kernel<<<blocks_for(count), kThreads, 0, stream>>>(fc1_out, rows, ffn, gated, out);
  return cudaGetLastError();
}

} // namespace foldplan::kernels
