// The memory-bound stand-in copies exactly what it is asked to: every vector of the requested
// share, wrapping around the buffer, whatever the split into launches.
#include <cstdint>
#include <vector>

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "kernels/stream_bytes.hpp"
#include "tests/gpu_test_support.hpp"

namespace foldplan::kernels {
namespace {

struct CopyCase {
  std::size_t buffer_words; // 32-bit words per buffer (a multiple of 4: 16-byte vectors)
  double total_bytes;       // read + written
  int kernels;
};

// Which words of the destination the copy wrote: it holds the source's pattern there, and the
// sentinel elsewhere.
void expect_copied(const CopyCase& copy) {
  const std::size_t bytes = copy.buffer_words * sizeof(std::uint32_t);
  std::vector<std::uint32_t> source(copy.buffer_words);
  for (std::size_t i = 0; i < source.size(); ++i)
    source[i] = static_cast<std::uint32_t>(i * 2654435761u + 1);
  void* device_source = nullptr;
  void* device_destination = nullptr;
  ASSERT_EQ(cudaMalloc(&device_source, bytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&device_destination, bytes), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(device_source, source.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemset(device_destination, 0xff, bytes), cudaSuccess);
  ASSERT_EQ(stream_bytes(device_source, device_destination, bytes, copy.total_bytes, copy.kernels,
                         nullptr),
            cudaSuccess);
  std::vector<std::uint32_t> destination(copy.buffer_words);
  ASSERT_EQ(cudaMemcpy(destination.data(), device_destination, bytes, cudaMemcpyDeviceToHost),
            cudaSuccess);
  cudaFree(device_source);
  cudaFree(device_destination);

  // Each launch copies its share from the start of the buffer, wrapping past the end.
  const std::size_t vectors_per_launch =
      static_cast<std::size_t>(copy.total_bytes / 2 / 16 / copy.kernels + 0.5);
  const std::size_t touched_words =
      std::min(copy.buffer_words, vectors_per_launch * 4); // 4 words per vector
  for (std::size_t i = 0; i < copy.buffer_words; ++i) {
    const std::uint32_t expected = i < touched_words ? source[i] : 0xffffffffu;
    ASSERT_EQ(destination[i], expected) << "word " << i;
  }
}

TEST(StreamBytes, CopiesTheRequestedShareAndWraps) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(1);
  // 1 Mi words; half of it copied in one launch, and an odd share in three.
  expect_copied({.buffer_words = 1 << 20, .total_bytes = 4.0 * (1 << 20), .kernels = 1});
  expect_copied({.buffer_words = 1 << 20, .total_bytes = 3.0 * 16 * 2 * 12345, .kernels = 3});
  // Longer than the buffer: wraps, so every word is written.
  expect_copied({.buffer_words = 4 * 1000, .total_bytes = 2.0 * 16 * 1000 * 7, .kernels = 2});
  // A few vectors only: fewer than the threads of one block.
  expect_copied({.buffer_words = 4 * 64, .total_bytes = 2.0 * 16 * 3, .kernels = 1});
}

} // namespace
} // namespace foldplan::kernels
