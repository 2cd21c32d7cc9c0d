// A grouped GEMM (MoE experts) run as Megatron runs it with --moe-grouped-gemm: Transformer
// Engine's GroupedLinear issues one cuBLAS GEMM per expert, round-robin over a few side streams
// (transformer_engine/common/util/multi_stream.cpp: num_compute_streams = 4), forked from and
// joined back into the caller's stream. The cost model prices exactly that
// (costmodel's ComputeCostModel::grouped_gemm_time_s); one strided-batched call would share waves
// between experts and run large experts faster than Megatron does.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <string>

namespace foldplan::runtime {

// Row-major C[m×n] (+)= A[m×k]·B[k×n] for `groups` problems laid out back to back in each buffer.
struct GroupedGemmOperands {
  std::int64_t groups = 1, m = 0, n = 0, k = 0;
  const void* a = nullptr; // bf16
  const void* b = nullptr; // bf16
  void* c = nullptr;       // bf16, or fp32 when accumulate_fp32
  bool accumulate_fp32 = false;
};

class GroupedGemmStreams {
public:
  GroupedGemmStreams() = default;
  GroupedGemmStreams(const GroupedGemmStreams&) = delete;
  GroupedGemmStreams& operator=(const GroupedGemmStreams&) = delete;
  // The streams and handles live as long as the process, like the executor's own: destroying a
  // cuBLAS handle synchronises the device, which would hang a rank whose NCCL work was aborted.
  ~GroupedGemmStreams() = default;

  // Issues every group's GEMM; `stream` waits for all of them, so events recorded on it around
  // this call time the whole grouped GEMM. Throws ExecutionError naming `where`.
  void launch(const GroupedGemmOperands& operands, cudaStream_t stream, const std::string& where);

private:
  void create(const std::string& where);

  // Transformer Engine's num_compute_streams (costmodel's kGroupedGemmStreams: the runtime
  // depends on core only).
  static constexpr int kStreams = 4;
  std::array<cudaStream_t, kStreams> streams_{};
  std::array<cublasHandle_t, kStreams> handles_{};
  std::array<cudaEvent_t, kStreams> joins_{};
  cudaEvent_t fork_ = nullptr;
};

} // namespace foldplan::runtime
