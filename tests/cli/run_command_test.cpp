// `foldplan run` refusals that need no GPU: bad --layers, and — in a build without CUDA, as CI's —
// the one-line refusal; with CUDA but no visible GPU, the GPU-count refusal. And --layers
// rescaling itself: every per-layer shape kept.
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "cli/layer_scaling.hpp"
#include "core/errors.hpp"
#include "models/model_spec.hpp"
#include "runtime/executor.hpp"
#include "tests/cli/run_foldplan.hpp"

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
  const std::string plan = write_plan("run_1gpu.json", "--gpus 1");
  if (!foldplan::runtime::runtime_has_gpu_support()) {
    expect_input_error("run " + plan + " --layers 2",
                       "foldplan run: this build has no CUDA/NCCL runtime (CMake found no CUDA "
                       "toolkit with cuBLAS and NCCL); rebuild where they are installed");
    return;
  }
  const CommandResult result = run_foldplan("run " + plan + " --layers 2");
  if (result.output.find("0 visible") == std::string::npos)
    GTEST_SKIP() << "a GPU is visible: the refusal is for machines without one";
  const std::string expected = "--local-gpus: 1 GPU(s) needed but 0 visible";
  expect_input_error("run " + plan + " --layers 2", expected);
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

} // namespace
