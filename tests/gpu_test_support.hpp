// For *_gpu_test.cpp files: they build only where CUDA is found and skip, saying why, on a
// machine without a visible GPU (CI), so a green run never hides that they did not run.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

namespace foldplan::testing_gpu {

inline int visible_gpus() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    return 0;
  }
  return count;
}

} // namespace foldplan::testing_gpu

#define FOLDPLAN_SKIP_WITHOUT_GPUS(n)                                                              \
  do {                                                                                             \
    if (::foldplan::testing_gpu::visible_gpus() < (n)) {                                           \
      GTEST_SKIP() << "needs " << (n) << " visible GPU(s), found "                                 \
                   << ::foldplan::testing_gpu::visible_gpus();                                     \
    }                                                                                              \
  } while (false)
