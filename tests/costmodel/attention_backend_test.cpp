// Attention priced for a chosen kernel: cuDNN by default (what Megatron runs), foldplan's own
// kernel for `foldplan run`, and the fallback to cuDNN, reported, where our kernel was not
// measured.
#include <cmath>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "costmodel/compute_cost.hpp"
#include "costmodel/cost_context.hpp"
#include "topologies/cluster_spec.hpp"
#include "topologies/gpu_calibration.hpp"

namespace foldplan {
namespace {

// Mixtral's attention at seq 4096: 32 query heads, 8 KV heads, d = 128, causal.
const AttentionShape kMixtral4096 = {1, 32, 8, 4096, 4096, 128, 128, true};

TEST(AttentionBackend, FoldplanPointsGiveTheTimeOurKernelWasBenchedAt) {
  const GpuSpec h100 = load_cluster("dgx-h100").gpu;
  const ComputeCostModel model(h100, builtin_calibration(h100.name), "foldplan");
  EXPECT_FALSE(model.attention_fallback().has_value());
  // topologies/calibration/h100.json, backend "foldplan", 32 heads, seq 4096, d = 128, causal:
  // kv 8 ran 221.9 / 196.7 TFLOP/s (fwd / bwd), kv 32 215.5 / 199.4. The table's node at
  // (seq 4096, 32 heads) is their geometric mean; the d = 64 and non-causal points stay out.
  const double flops = 4.0 * 32 * 4096.0 * 4096.0 * 128 / 2;
  const double forward_s = flops / (std::sqrt(221.9 * 215.5) * 1e12);
  const double backward_s = 2.5 * flops / (std::sqrt(196.7 * 199.4) * 1e12);
  EXPECT_NEAR(model.attention_forward_time_s(kMixtral4096), forward_s, 1e-9 * forward_s);
  EXPECT_NEAR(model.attention_backward_time_s(kMixtral4096), backward_s, 1e-9 * backward_s);
  // docs/attention_h100_bench.json measured this shape at 0.6194 ms forward, 1.7469 ms backward.
  EXPECT_NEAR(model.attention_forward_time_s(kMixtral4096), 0.6194e-3, 0.02 * 0.6194e-3);
  EXPECT_NEAR(model.attention_backward_time_s(kMixtral4096), 1.7469e-3, 0.02 * 1.7469e-3);
}

TEST(AttentionBackend, CudnnStaysTheDefault) {
  const ClusterSpec cluster = load_cluster("dgx-h100");
  const CostContext context(cluster, 8);
  EXPECT_FALSE(context.attention_fallback().has_value());
  // The cuDNN point at this shape: 418.6 TFLOP/s forward, 326.1 backward.
  const double flops = 4.0 * 32 * 4096.0 * 4096.0 * 128 / 2;
  const double forward_s = context.compute().attention_forward_time_s(kMixtral4096);
  EXPECT_NEAR(forward_s, flops / 418.6e12, 1e-9 * forward_s);
  const double backward_s = context.compute().attention_backward_time_s(kMixtral4096);
  EXPECT_NEAR(backward_s, 2.5 * flops / 326.1e12, 1e-9 * backward_s);
  const CostContext cudnn(cluster, 8, std::nullopt, "cudnn");
  EXPECT_EQ(cudnn.compute().attention_forward_time_s(kMixtral4096), forward_s);
  // Our kernel is about half as fast as cuDNN at this shape.
  const CostContext foldplan(cluster, 8, std::nullopt, "foldplan");
  EXPECT_GT(foldplan.compute().attention_forward_time_s(kMixtral4096), 1.8 * forward_s);
}

TEST(AttentionBackend, WithoutPointsOfTheBackendFallsBackToCudnnAndSaysSo) {
  const ClusterSpec h200 = load_cluster("dgx-h200");
  // The shipped H200 file has our kernel's points (foldplan calibrate); without them:
  EXPECT_FALSE(CostContext(h200, 8, std::nullopt, "foldplan").attention_fallback().has_value());
  GpuCalibration cudnn_only = *builtin_calibration(h200.gpu.name);
  std::erase_if(cudnn_only.attention,
                [](const AttentionMeasurement& point) { return point.backend == "foldplan"; });
  const CostContext foldplan(h200, 8, cudnn_only, "foldplan");
  const CostContext cudnn(h200, 8);
  ASSERT_TRUE(foldplan.attention_fallback().has_value());
  EXPECT_EQ(*foldplan.attention_fallback(),
            "attention predicted from cudnn measurements: no foldplan points in the "
            "H200-SXM5-141GB calibration");
  EXPECT_EQ(foldplan.compute().attention_forward_time_s(kMixtral4096),
            cudnn.compute().attention_forward_time_s(kMixtral4096));
  EXPECT_EQ(foldplan.compute().attention_backward_time_s(kMixtral4096),
            cudnn.compute().attention_backward_time_s(kMixtral4096));
  EXPECT_FALSE(cudnn.attention_fallback().has_value());
}

TEST(AttentionBackend, WithoutAttentionPointsThePhysicalModelIsReported) {
  const GpuSpec h100 = load_cluster("dgx-h100").gpu;
  GpuCalibration partial = *builtin_calibration(h100.name);
  partial.attention.clear();
  const ComputeCostModel model(h100, partial, "foldplan");
  EXPECT_EQ(model.attention_fallback(),
            "attention predicted from the physical model: the H100-SXM5-80GB calibration has no "
            "attention points");
  const ComputeCostModel a100(load_cluster("dgx-a100").gpu, std::nullopt, "foldplan");
  ASSERT_TRUE(a100.attention_fallback().has_value());
  EXPECT_EQ(a100.attention_fallback()->rfind("attention predicted from the physical model: no "
                                             "calibration for ",
                                             0),
            0u);
}

} // namespace
} // namespace foldplan
