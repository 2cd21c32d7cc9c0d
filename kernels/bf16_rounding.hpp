// float → bfloat16 → float on the host, rounding to nearest even as __float2bfloat16 does: the CPU
// references round their inputs and intermediates exactly as the GPU stores them.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace foldplan::kernels {

inline float round_to_bf16(float value) {
  if (std::isnan(value))
    return value;
  auto bits = std::bit_cast<std::uint32_t>(value);
  bits += 0x7FFFu + ((bits >> 16) & 1u); // round half to even on the 16 bits dropped
  return std::bit_cast<float>(bits & 0xFFFF0000u);
}

} // namespace foldplan::kernels
