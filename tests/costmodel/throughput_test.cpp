#include "costmodel/throughput.hpp"

#include <gtest/gtest.h>

namespace foldplan {
namespace {

// The paper's headline: 487.7 TFLOP/s per H100 is 49.3% MFU against 989.5 TFLOP/s.
TEST(Throughput, MfuIsModelFlopsPerGpuOverPeak) {
  const double gpus = 128;
  const double step_time_s = 10.0;
  const double flops_per_step = 487.7e12 * gpus * step_time_s;
  const Throughput result =
      megatron_throughput(flops_per_step, 256.0 * 4096, step_time_s, 128, 989.5e12);
  EXPECT_NEAR(result.tflops_per_gpu, 487.7, 1e-9);
  EXPECT_NEAR(result.mfu, 0.4929, 1e-4);
  EXPECT_NEAR(result.tokens_per_s_per_gpu, 256.0 * 4096 / 10.0 / 128, 1e-9);
}

} // namespace
} // namespace foldplan
