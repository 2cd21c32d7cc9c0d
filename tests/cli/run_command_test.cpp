// `foldplan run` refusals that need no GPU: bad --layers, and — in a build without CUDA, as CI's —
// the one-line refusal; with CUDA but no visible GPU, the GPU-count refusal. And --layers
// rescaling itself: every per-layer shape kept; and what run predicts: attention priced from our
// own kernel's measurements, cuDNN's (said so) where ours was not measured.
#include <cmath>
#include <cstdio>
#include <string>
#include <variant>

#include <gtest/gtest.h>

#include "cli/layer_scaling.hpp"
#include "cli/run_prediction.hpp"
#include "core/errors.hpp"
#include "costmodel/cost_context.hpp"
#include "models/model_spec.hpp"
#include "simulator/routed_lowering.hpp"
#include "simulator/routing.hpp"
#include "tests/cli/run_foldplan.hpp"
#include "topologies/cluster_spec.hpp"
#include "topologies/gpu_calibration.hpp"

namespace {

using foldplan::testing_cli::CommandResult;
using foldplan::testing_cli::expect_input_error;
using foldplan::testing_cli::run_foldplan;

std::string write_plan(const std::string& name, const std::string& sizes) {
  const std::string path = testing::TempDir() + name;
  std::remove(path.c_str());
  const CommandResult result =
      run_foldplan("estimate --model mixtral-8x7b --cluster dgx-h100 --seq 4096 --gbs 8 --mbs 1 " +
                   sizes + " -o " + path);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return path;
}

TEST(RunCommand, LayersMustSplitOverThePipelineStages) {
  const std::string plan = write_plan("run_pp2.json", "--gpus 2 --pp 2 --vpp 2");
  expect_input_error("run " + plan + " --layers 6",
                     "--layers: 6 layers: parallel.vpp: num_layers 6 is not divisible by PP·VPP "
                     "= 2·2 = 4");
  expect_input_error("run " + plan + " --layers 0", "--layers: 0 is not a positive integer");
}

TEST(RunCommand, RefusesInOneLineWithoutAGpuRuntime) {
  foldplan::testing_cli::expect_gpu_refusal("run", write_plan("run_1gpu.json", "--gpus 1"));
}

TEST(LayerScaling, KeepsEveryPerLayerShapeAndDropsTheStalePrediction) {
  const foldplan::Plan plan = foldplan::load_plan(write_plan("run_scale.json", "--gpus 1"));
  ASSERT_TRUE(plan.prediction.has_value());
  const foldplan::Plan scaled = foldplan::cli::scale_plan_layers(plan, 2);
  EXPECT_EQ(scaled.model.num_layers, 2);
  foldplan::ModelSpec expected = plan.model;
  expected.num_layers = 2;
  EXPECT_EQ(scaled.model, expected);
  EXPECT_EQ(scaled.parallel, plan.parallel);
  EXPECT_EQ(scaled.training, plan.training);
  EXPECT_FALSE(scaled.prediction.has_value());
}

TEST(LayerScaling, AListFormLayerPatternKeepsItsFirstEntries) {
  foldplan::Plan plan = foldplan::load_plan(write_plan("run_pattern.json", "--gpus 1"));
  plan.model.moe.layer_pattern.assign(static_cast<std::size_t>(plan.model.num_layers), true);
  plan.model.moe.layer_pattern[0] = false;
  const foldplan::Plan scaled = foldplan::cli::scale_plan_layers(plan, 3);
  EXPECT_EQ(scaled.model.moe.layer_pattern, (std::vector<bool>{false, true, true}));
  try {
    foldplan::cli::scale_plan_layers(plan, 1); // only the dense first layer left
    FAIL() << "a MoE model without MoE layers accepted";
  } catch (const foldplan::InputError& error) {
    EXPECT_EQ(error.field(), "--layers");
  }
}

// The attention ops' predicted times, forward and backward, over the first program.
struct AttentionTimes {
  int forward_ops = 0, backward_ops = 0;
  double forward_s = 0, backward_s = 0; // of one op each; every op has the same shape here
};

AttentionTimes attention_times(const foldplan::StepProgram& program,
                               const foldplan::cli::RunPrediction& prediction) {
  AttentionTimes times;
  for (const foldplan::Op& op : program.programs.front().ops) {
    const auto* attention = std::get_if<foldplan::AttentionOpShape>(&op.shape);
    if (attention == nullptr)
      continue;
    EXPECT_EQ(*attention, (foldplan::AttentionOpShape{1, 32, 8, 4096, 4096, 128, 128, true,
                                                      attention->backward}));
    const double seconds = prediction.op_time_s.front().at(op.id);
    (attention->backward ? times.backward_ops : times.forward_ops) += 1;
    (attention->backward ? times.backward_s : times.forward_s) = seconds;
  }
  return times;
}

TEST(RunPrediction, AttentionIsPricedFromOurKernel) {
  const foldplan::Plan plan = foldplan::cli::scale_plan_layers(
      foldplan::load_plan(write_plan("run_predict.json", "--gpus 1")), 2);
  const foldplan::StepProgram program =
      foldplan::lower_routed_plan(plan, foldplan::parse_routing_spec("balanced")).program;
  const foldplan::cli::RunPrediction prediction = foldplan::cli::predict_run(plan, program);
  EXPECT_FALSE(prediction.attention_note.has_value());
  const AttentionTimes times = attention_times(program, prediction);
  // 2 layers × 8 micro-batches (gbs 8, mbs 1, one GPU).
  EXPECT_EQ(times.forward_ops, 16);
  EXPECT_EQ(times.backward_ops, 16);
  // The "foldplan" points of topologies/calibration/h100.json at this shape (kv 8 and kv 32, whose
  // node is their geometric mean): 221.9 and 215.5 TFLOP/s forward, 196.7 and 199.4 backward —
  // not cuDNN's 418.6 and 326.1.
  const double flops = 4.0 * 32 * 4096.0 * 4096.0 * 128 / 2;
  EXPECT_NEAR(times.forward_s, flops / (std::sqrt(221.9 * 215.5) * 1e12), 1e-12);
  EXPECT_NEAR(times.backward_s, 2.5 * flops / (std::sqrt(196.7 * 199.4) * 1e12), 1e-12);
}

TEST(RunPrediction, AccumulatingGemmsArePricedFromTheRuntimesOwnMeasuredCall) {
  const foldplan::Plan plan = foldplan::cli::scale_plan_layers(
      foldplan::load_plan(write_plan("run_predict_wgrad.json", "--gpus 1")), 2);
  const foldplan::StepProgram program =
      foldplan::lower_routed_plan(plan, foldplan::parse_routing_spec("balanced")).program;
  const foldplan::cli::RunPrediction prediction = foldplan::cli::predict_run(plan, program);
  // The runtime's cuBLAS call was measured into gemm.bf16_accumulate_fp32 (foldplan calibrate);
  // Megatron's weight gradients keep the bf16 table with the fp32 streaming bound.
  const foldplan::CostContext runtime(plan.cluster, plan.gpus, std::nullopt, "foldplan",
                                      foldplan::GemmKernels::foldplan_runtime);
  const foldplan::CostContext megatron(plan.cluster, plan.gpus);
  int accumulating = 0, priced_apart = 0;
  for (const foldplan::Op& op : program.programs.front().ops) {
    const auto* gemm = std::get_if<foldplan::GemmShape>(&op.shape);
    if (gemm == nullptr || !gemm->accumulate_fp32 || gemm->groups != 1)
      continue;
    ++accumulating;
    const double expected =
        runtime.compute().gemm_time_s(gemm->m, gemm->n, gemm->k, foldplan::GemmPrecision::bf16,
                                      foldplan::GemmOutput::fp32_accumulate);
    EXPECT_DOUBLE_EQ(prediction.op_time_s.front().at(op.id), expected) << op.id;
    priced_apart += expected != megatron.compute().gemm_time_s(
                                    gemm->m, gemm->n, gemm->k, foldplan::GemmPrecision::bf16,
                                    foldplan::GemmOutput::fp32_accumulate);
  }
  EXPECT_GT(accumulating, 0);
  EXPECT_GT(priced_apart, 0);
}

TEST(RunPrediction, OnAnH200AttentionIsPricedFromOurKernelsOwnPoints) {
  // topologies/calibration/h200.json holds our kernel's points (foldplan calibrate, 2026-11-23);
  // the fallback to cuDNN's when a GPU has none is tests/costmodel/attention_backend_test.cpp's.
  foldplan::Plan plan = foldplan::cli::scale_plan_layers(
      foldplan::load_plan(write_plan("run_predict_h200.json", "--gpus 1")), 2);
  plan.cluster = foldplan::load_cluster("dgx-h200");
  const foldplan::StepProgram program =
      foldplan::lower_routed_plan(plan, foldplan::parse_routing_spec("balanced")).program;
  const foldplan::cli::RunPrediction prediction = foldplan::cli::predict_run(plan, program);
  EXPECT_EQ(prediction.attention_note, std::nullopt);
  // The H200's foldplan points at this shape (topologies/calibration/h200.json), kv 8 and kv 32,
  // whose node is their geometric mean (as on the H100 above).
  const foldplan::GpuCalibration h200 = *foldplan::builtin_calibration("H200-SXM5-141GB");
  double kv8 = 0, kv32 = 0;
  for (const foldplan::AttentionMeasurement& point : h200.attention) {
    if (point.backend == "foldplan" && point.heads == 32 && point.seq == 4096 &&
        point.head_dim == 128 && point.causal)
      (point.kv_heads == 8 ? kv8 : kv32) = point.fwd_tflops;
  }
  ASSERT_GT(kv8, 0);
  ASSERT_GT(kv32, 0);
  const double flops = 4.0 * 32 * 4096.0 * 4096.0 * 128 / 2;
  EXPECT_NEAR(attention_times(program, prediction).forward_s,
              flops / (std::sqrt(kv8 * kv32) * 1e12), 1e-12);
}

} // namespace
