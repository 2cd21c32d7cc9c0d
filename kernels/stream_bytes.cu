#include "kernels/stream_bytes.hpp"

#include <algorithm>
#include <cmath>

namespace foldplan::kernels {
namespace {

constexpr int kThreads = 256;

// 16-byte vectors; the copy goes over the buffers again as many times as `vectors` needs.
__global__ void copy_wrapping(const uint4* __restrict__ source, uint4* __restrict__ destination,
                              std::size_t buffer_vectors, std::size_t vectors) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t base = 0; base < vectors; base += buffer_vectors) {
    const std::size_t limit = min(buffer_vectors, vectors - base);
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < limit;
         i += stride)
      destination[i] = source[i];
  }
}

__global__ void fill_pattern(__nv_bfloat16* values, std::size_t count, std::uint32_t seed,
                             float scale) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
       i += stride) {
    // A 32-bit integer hash (lowbias32) of index and seed: no state, reproducible.
    std::uint32_t x = static_cast<std::uint32_t>(i) ^ (seed * 0x9E3779B9u);
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    const float unit = static_cast<float>(x) * (1.0f / 4294967296.0f);
    values[i] = __float2bfloat16((2.0f * unit - 1.0f) * scale);
  }
}

int blocks_for(std::size_t work) {
  // Enough blocks to fill every SM several times over; the grid-stride loops do the rest.
  constexpr std::size_t kMaxBlocks = 132 * 16;
  const std::size_t needed = (work + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<std::size_t>(1, std::min(needed, kMaxBlocks)));
}

} // namespace

cudaError_t stream_bytes(const void* source, void* destination, std::size_t buffer_bytes,
                         double total_bytes, int kernels, cudaStream_t stream) {
  const std::size_t buffer_vectors = buffer_bytes / sizeof(uint4);
  const double copied_vectors = total_bytes / 2.0 / sizeof(uint4);
  const auto per_kernel =
      static_cast<std::size_t>(std::llround(copied_vectors / std::max(kernels, 1)));
  for (int launch = 0; launch < kernels; ++launch) {
    copy_wrapping<<<blocks_for(std::min(per_kernel, buffer_vectors) + 1), kThreads, 0, stream>>>(
        static_cast<const uint4*>(source), static_cast<uint4*>(destination), buffer_vectors,
        per_kernel);
  }
  return cudaGetLastError();
}

cudaError_t fill_bf16(__nv_bfloat16* values, std::size_t count, std::uint32_t seed, float scale,
                      cudaStream_t stream) {
  fill_pattern<<<blocks_for(count), kThreads, 0, stream>>>(values, count, seed, scale);
  return cudaGetLastError();
}

} // namespace foldplan::kernels
