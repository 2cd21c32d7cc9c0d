#include "runtime/grouped_gemm_gpu.hpp"

#include <algorithm>

#include "runtime/cuda_status_gpu.hpp"

namespace foldplan::runtime {

void GroupedGemmStreams::create(const std::string& where) {
  check_cuda(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming), where);
  for (int index = 0; index < kStreams; ++index) {
    check_cuda(cudaStreamCreateWithFlags(&streams_[index], cudaStreamNonBlocking), where);
    check_cuda(cudaEventCreateWithFlags(&joins_[index], cudaEventDisableTiming), where);
    check_cublas(cublasCreate(&handles_[index]), where);
    check_cublas(cublasSetStream(handles_[index], streams_[index]), where);
  }
}

void GroupedGemmStreams::launch(const GroupedGemmOperands& operands, cudaStream_t stream,
                                const std::string& where) {
  if (fork_ == nullptr)
    create(where);
  const int used = static_cast<int>(std::min<std::int64_t>(operands.groups, kStreams));
  check_cuda(cudaEventRecord(fork_, stream), where);
  for (int index = 0; index < used; ++index)
    check_cuda(cudaStreamWaitEvent(streams_[index], fork_), where);

  // Row-major C[m×n] = A[m×k]·B[k×n] is column-major Cᵀ = Bᵀ·Aᵀ: cuBLAS gets (n, m, k).
  const float alpha = 1.0f;
  const float beta = operands.accumulate_fp32 ? 1.0f : 0.0f;
  const std::size_t c_element = operands.accumulate_fp32 ? 4 : 2;
  const auto m = static_cast<int>(operands.m), n = static_cast<int>(operands.n),
             k = static_cast<int>(operands.k);
  for (std::int64_t group = 0; group < operands.groups; ++group) {
    const auto offset = static_cast<std::size_t>(group);
    const auto* a = static_cast<const char*>(operands.a) +
                    offset * static_cast<std::size_t>(operands.m * operands.k) * 2;
    const auto* b = static_cast<const char*>(operands.b) +
                    offset * static_cast<std::size_t>(operands.k * operands.n) * 2;
    auto* c = static_cast<char*>(operands.c) +
              offset * static_cast<std::size_t>(operands.m * operands.n) * c_element;
    check_cublas(cublasGemmEx(handles_[group % kStreams], CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &alpha,
                              b, CUDA_R_16BF, n, a, CUDA_R_16BF, k, &beta, c,
                              operands.accumulate_fp32 ? CUDA_R_32F : CUDA_R_16BF, n,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 where);
  }
  for (int index = 0; index < used; ++index) {
    check_cuda(cudaEventRecord(joins_[index], streams_[index]), where);
    check_cuda(cudaStreamWaitEvent(stream, joins_[index]), where);
  }
}

} // namespace foldplan::runtime
