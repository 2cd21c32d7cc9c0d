// The stand-in for a memory-bound op (norms, activations, permutations, the optimizer): kernels
// that move the op's bytes through HBM — half read, half written — so its time is what the GPU's
// memory system gives that traffic, launches included. And a fill for synthetic inputs.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace foldplan::kernels {

// Copies total_bytes / 2 from `source` to `destination` (each buffer_bytes long; the copy wraps
// around the buffers when it is longer) in `kernels` launches of equal share. buffer_bytes a
// multiple of 16 and larger than L2, so the traffic reaches HBM.
cudaError_t stream_bytes(const void* source, void* destination, std::size_t buffer_bytes,
                         double total_bytes, int kernels, cudaStream_t stream);

// Fills `count` bf16 values with a deterministic pseudo-random pattern in [-scale, scale].
cudaError_t fill_bf16(__nv_bfloat16* values, std::size_t count, std::uint32_t seed, float scale,
                      cudaStream_t stream);

} // namespace foldplan::kernels
