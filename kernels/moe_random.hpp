// The MoE layer's random tokens and weights, drawn by element index from a counter-based hash so
// the GPU fills whole tensors while the CPU reference regenerates any single element. Every value
// is an integer in [-127, 127] times a power of two, hence exact in bf16: GPU and CPU start from
// bit-identical data. Shared by .cu (C++17) and host code.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define FOLDPLAN_HOST_DEVICE __host__ __device__
#else
#define FOLDPLAN_HOST_DEVICE
#endif

namespace foldplan::kernels {

// Streams: which tensor a value belongs to, so tensors drawn from one seed are independent.
FOLDPLAN_HOST_DEVICE inline std::uint64_t moe_token_stream(std::uint64_t rank) {
  return (std::uint64_t{1} << 32) | rank;
}
FOLDPLAN_HOST_DEVICE inline std::uint64_t moe_router_stream() {
  return std::uint64_t{2} << 32;
}
FOLDPLAN_HOST_DEVICE inline std::uint64_t moe_fc1_stream(std::uint64_t expert) {
  return (std::uint64_t{3} << 32) | expert;
}
FOLDPLAN_HOST_DEVICE inline std::uint64_t moe_fc2_stream(std::uint64_t expert) {
  return (std::uint64_t{4} << 32) | expert;
}

// splitmix64 of (seed, stream, index); `scale` must be a power of two for exactness.
FOLDPLAN_HOST_DEVICE inline float moe_random_value(std::uint64_t seed, std::uint64_t stream,
                                                   std::uint64_t index, float scale) {
  std::uint64_t z =
      seed * 0x9E3779B97F4A7C15ull ^ (stream + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull;
  z += index * 0x94D049BB133111EBull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  const int integer = static_cast<int>(z % 255u) - 127;
  return static_cast<float>(integer) * scale;
}

// The power of two nearest 1/(128·sqrt(fan_in)): values of magnitude ≤ 1/sqrt(fan_in), so a
// product with fan_in unit-scale inputs stays of order one.
FOLDPLAN_HOST_DEVICE inline float moe_weight_scale(std::int64_t fan_in) {
  int log2_sqrt = 0;
  while ((std::int64_t{1} << (2 * (log2_sqrt + 1))) <= fan_in)
    ++log2_sqrt;
  float scale = 1.0f / 128.0f;
  for (int i = 0; i < log2_sqrt; ++i)
    scale *= 0.5f;
  return scale;
}
inline constexpr float kMoeTokenScale = 1.0f / 128.0f;

} // namespace foldplan::kernels
