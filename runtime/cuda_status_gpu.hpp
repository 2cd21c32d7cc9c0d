// CUDA and cuBLAS status checks of the executor's GPU code: a failed call becomes an
// ExecutionError whose line names what was being done and the library's own message.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include <fmt/format.h>

#include "runtime/executor.hpp"

namespace foldplan::runtime {

inline void check_cuda(cudaError_t status, const std::string& what) {
  if (status != cudaSuccess)
    throw ExecutionError(fmt::format("{}: CUDA error: {}", what, cudaGetErrorString(status)));
}

inline void check_cublas(cublasStatus_t status, const std::string& what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw ExecutionError(fmt::format("{}: cuBLAS error: {}", what, cublasGetStatusString(status)));
}

} // namespace foldplan::runtime
