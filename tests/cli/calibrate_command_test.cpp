// `foldplan calibrate` refusals that need no GPU: bad flags, a bad --base, and the refusal of a
// build without CUDA (CI) or a machine without a visible GPU — each one line, exit 2.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "runtime/executor.hpp"
#include "tests/cli/run_foldplan.hpp"

namespace {

using foldplan::testing_cli::CommandResult;
using foldplan::testing_cli::expect_input_error;
using foldplan::testing_cli::run_foldplan;

TEST(CalibrateCommand, BadFlagsAreRefusedInOneLine) {
  const std::string out = testing::TempDir() + "calibrate_bad_flags.json";
  expect_input_error("calibrate", "-o: is missing; give the calibration file to write (or --json)");
  expect_input_error("calibrate --local-gpus 0 -o " + out,
                     "--local-gpus: 0 is not a positive number");
  expect_input_error("calibrate --device -1 -o " + out,
                     "--device: -1 is not a GPU index (0 or more)");
  expect_input_error("calibrate --gpu H999 -o " + out,
                     "--gpu: \"H999\" is not the GPU of any cluster preset (A100-SXM4-80GB, "
                     "B200-in-GB200-186GB, H100-SXM5-80GB, H200-SXM5-141GB, H800-SXM5-80GB)");
  const CommandResult result = run_foldplan("calibrate --base /nonexistent/base.json -o " + out);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("/nonexistent/base.json"), std::string::npos) << result.output;
  EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << result.output;
}

TEST(CalibrateCommand, RefusesInOneLineWithoutAGpuRuntime) {
  const std::string out = testing::TempDir() + "calibrate_no_gpu.json";
  std::remove(out.c_str());
  if (!foldplan::runtime::runtime_has_gpu_support()) {
    expect_input_error("calibrate -o " + out,
                       "foldplan calibrate: this build has no CUDA/NCCL runtime (CMake found no "
                       "CUDA toolkit with cuBLAS and NCCL); rebuild where they are installed");
  } else {
    const CommandResult result = run_foldplan("calibrate --quick -o " + out);
    if (result.output.find("0 visible") == std::string::npos)
      GTEST_SKIP() << "a GPU is visible: the refusal is for machines without one";
    expect_input_error("calibrate --quick -o " + out, "--device: GPU 0 needed but 0 visible");
  }
  // Nothing was written.
  EXPECT_FALSE(std::ifstream(out).good());
}

} // namespace
