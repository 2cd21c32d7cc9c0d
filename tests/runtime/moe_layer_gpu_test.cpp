// The MoE layer on real GPUs: every check of run_moe_layer must pass — routing, dropping,
// permutation, the all-to-all-v round trip and the combined output against the CPU reference —
// for dropless, dropping, padded, position-policy and skewed routing, with EP and ETP where GPUs
// allow, and at the full Mixtral-8x7B shape (whose stage times the test prints).
#include "runtime/moe_layer.hpp"

#include <iostream>
#include <numeric>
#include <thread>

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "tests/gpu_test_support.hpp"

namespace foldplan::runtime {
namespace {

#define ASSERT_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call
#define ASSERT_NCCL(call) ASSERT_EQ((call), ncclSuccess) << #call

MoeLayerSpec small_spec() {
  MoeLayerSpec spec;
  spec.tokens = 256;
  spec.hidden = 256;
  spec.ffn_hidden = 384;
  spec.experts = 8;
  spec.top_k = 2;
  spec.seed = 3;
  return spec;
}

std::string describe(const MoeLayerResult& result) {
  std::string text;
  for (const MoeLayerCheck& check : result.checks)
    text += (check.passed ? "  ok   " : "  FAIL ") + check.name + ": " + check.detail + "\n";
  text += "  rows per local expert:";
  for (const std::int64_t rows : result.tokens_per_local_expert)
    text += " " + std::to_string(rows);
  text += "\n  dropped choices: " + std::to_string(result.dropped_tokens) + "\n  stage ms:";
  for (const auto& [stage, seconds] : result.stage_seconds)
    text += " " + stage + " " + std::to_string(seconds * 1e3);
  return text + "\n";
}

// One rank per GPU: rank r on device devices[r], in its own thread. `ep_groups` and
// `etp_groups` list ranks; a rank's ETP communicator is null when ETP = 1.
std::vector<MoeLayerResult> run_ranks(const MoeLayerSpec& spec, int ranks,
                                      const std::vector<std::vector<int>>& ep_groups,
                                      const std::vector<std::vector<int>>& etp_groups) {
  std::vector<ncclComm_t> ep(static_cast<std::size_t>(ranks), nullptr);
  std::vector<ncclComm_t> etp(static_cast<std::size_t>(ranks), nullptr);
  const auto make = [](const std::vector<std::vector<int>>& groups, std::vector<ncclComm_t>& out) {
    for (const std::vector<int>& group : groups) {
      std::vector<ncclComm_t> comms(group.size());
      EXPECT_EQ(ncclCommInitAll(comms.data(), static_cast<int>(group.size()), group.data()),
                ncclSuccess);
      for (std::size_t i = 0; i < group.size(); ++i)
        out[static_cast<std::size_t>(group[i])] = comms[i];
    }
  };
  make(ep_groups, ep);
  if (!etp_groups.empty())
    make(etp_groups, etp);
  std::vector<MoeLayerResult> results(static_cast<std::size_t>(ranks));
  std::vector<std::string> errors(static_cast<std::size_t>(ranks));
  std::vector<std::thread> threads;
  for (int rank = 0; rank < ranks; ++rank) {
    threads.emplace_back([&, rank] {
      const auto r = static_cast<std::size_t>(rank);
      cudaSetDevice(rank);
      cudaStream_t stream = nullptr;
      cublasHandle_t cublas = nullptr;
      cudaStreamCreate(&stream);
      cublasCreate(&cublas);
      try {
        results[r] = run_moe_layer(spec, ep[r], etp[r], stream, cublas);
      } catch (const std::exception& error) {
        errors[r] = error.what();
      }
      cublasDestroy(cublas);
      cudaStreamDestroy(stream);
    });
  }
  for (std::thread& thread : threads)
    thread.join();
  for (int rank = 0; rank < ranks; ++rank) {
    const auto r = static_cast<std::size_t>(rank);
    EXPECT_EQ(errors[r], "") << "rank " << rank;
    ncclCommDestroy(ep[r]);
    if (etp[r])
      ncclCommDestroy(etp[r]);
  }
  return results;
}

MoeLayerResult run_one_gpu(const MoeLayerSpec& spec) {
  return run_ranks(spec, 1, {{0}}, {}).front();
}

std::int64_t total_rows(const MoeLayerResult& result) {
  return std::accumulate(result.tokens_per_local_expert.begin(),
                         result.tokens_per_local_expert.end(), std::int64_t{0});
}

TEST(MoeLayerGpu, DroplessOnOneGpu) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(1);
  const MoeLayerSpec spec = small_spec();
  const MoeLayerResult result = run_one_gpu(spec);
  EXPECT_TRUE(result.all_passed()) << describe(result);
  EXPECT_EQ(result.checks.size(), 7u);
  EXPECT_EQ(result.dropped_tokens, 0);
  EXPECT_EQ(total_rows(result), spec.tokens * spec.top_k);
  EXPECT_EQ(result.stage_seconds.size(), 6u);
}

TEST(MoeLayerGpu, CapacityOneDropsTokens) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(1);
  MoeLayerSpec spec = small_spec();
  spec.capacity_factor = 1.0;
  spec.routing_skew = 1.0; // low experts overflow
  const MoeLayerResult result = run_one_gpu(spec);
  EXPECT_TRUE(result.all_passed()) << describe(result);
  EXPECT_GT(result.dropped_tokens, 0);
  const std::int64_t capacity = spec.tokens * spec.top_k / spec.experts; // 64
  for (const std::int64_t rows : result.tokens_per_local_expert)
    EXPECT_LE(rows, capacity);
  EXPECT_EQ(total_rows(result) + result.dropped_tokens, spec.tokens * spec.top_k);
}

TEST(MoeLayerGpu, CapacityByPositionDropsTokens) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(1);
  MoeLayerSpec spec = small_spec();
  spec.capacity_factor = 1.0;
  spec.routing_skew = 1.0;
  spec.drop_by_position = true;
  const MoeLayerResult result = run_one_gpu(spec);
  EXPECT_TRUE(result.all_passed()) << describe(result);
  EXPECT_GT(result.dropped_tokens, 0);
}

TEST(MoeLayerGpu, PadToCapacityFillsEveryExpert) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(1);
  MoeLayerSpec spec = small_spec();
  spec.capacity_factor = 1.25;
  spec.pad_to_capacity = true;
  spec.routing_skew = 0.5;
  const MoeLayerResult result = run_one_gpu(spec);
  EXPECT_TRUE(result.all_passed()) << describe(result);
  for (const std::int64_t rows : result.tokens_per_local_expert)
    EXPECT_EQ(rows, 80); // ceil(256·2/8 · 1.25)
}

TEST(MoeLayerGpu, SkewedDroplessLoadsLowExperts) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(1);
  MoeLayerSpec spec = small_spec();
  spec.routing_skew = 2.0;
  spec.gated = false; // the GELU path too
  const MoeLayerResult result = run_one_gpu(spec);
  EXPECT_TRUE(result.all_passed()) << describe(result);
  ASSERT_EQ(result.tokens_per_local_expert.size(), 8u);
  EXPECT_GT(result.tokens_per_local_expert.front(), 2 * result.tokens_per_local_expert.back());
}

TEST(MoeLayerGpu, RejectsBadSpecs) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(1);
  MoeLayerSpec spec = small_spec();
  spec.hidden = 100;
  ncclComm_t comm = nullptr;
  const int device = 0;
  ASSERT_NCCL(ncclCommInitAll(&comm, 1, &device));
  cublasHandle_t cublas = nullptr;
  ASSERT_EQ(cublasCreate(&cublas), CUBLAS_STATUS_SUCCESS);
  EXPECT_THROW(run_moe_layer(spec, comm, nullptr, nullptr, cublas), InputError);
  spec = small_spec();
  spec.top_k = 9;
  EXPECT_THROW(run_moe_layer(spec, comm, nullptr, nullptr, cublas), InputError);
  cublasDestroy(cublas);
  ncclCommDestroy(comm);
}

TEST(MoeLayerGpu, ExpertParallelTwoGpus) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(2);
  for (const double skew : {0.0, 1.5}) {
    MoeLayerSpec spec = small_spec();
    spec.routing_skew = skew;
    spec.capacity_factor = skew > 0 ? 1.0 : 0.0;
    const std::vector<MoeLayerResult> results = run_ranks(spec, 2, {{0, 1}}, {});
    std::int64_t received = 0, dropped = 0;
    for (std::size_t rank = 0; rank < results.size(); ++rank) {
      EXPECT_TRUE(results[rank].all_passed()) << "rank " << rank << "\n" << describe(results[rank]);
      EXPECT_EQ(results[rank].tokens_per_local_expert.size(), 4u);
      received += total_rows(results[rank]);
      dropped += results[rank].dropped_tokens;
    }
    EXPECT_EQ(received + dropped, 2 * spec.tokens * spec.top_k) << "skew " << skew;
  }
}

TEST(MoeLayerGpu, ExpertTensorParallelTwoGpus) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(2);
  MoeLayerSpec spec = small_spec();
  spec.capacity_factor = 1.0;
  spec.pad_to_capacity = true;
  // EP = 1 on each GPU, ETP = 2 across them: each holds half of every expert's FFN.
  const std::vector<MoeLayerResult> results = run_ranks(spec, 2, {{0}, {1}}, {{0, 1}});
  for (std::size_t rank = 0; rank < results.size(); ++rank) {
    EXPECT_TRUE(results[rank].all_passed()) << "rank " << rank << "\n" << describe(results[rank]);
    for (const std::int64_t rows : results[rank].tokens_per_local_expert)
      EXPECT_EQ(rows, 2 * 64); // capacity from each of the two ETP ranks
  }
}

TEST(MoeLayerGpu, ExpertAndTensorParallelFourGpus) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(4);
  MoeLayerSpec spec = small_spec();
  spec.routing_skew = 1.0;
  // Megatron's expert ranks: r = etp + ETP·ep, so EP groups are strided by ETP.
  const std::vector<MoeLayerResult> results =
      run_ranks(spec, 4, {{0, 2}, {1, 3}}, {{0, 1}, {2, 3}});
  for (std::size_t rank = 0; rank < results.size(); ++rank)
    EXPECT_TRUE(results[rank].all_passed()) << "rank " << rank << "\n" << describe(results[rank]);
}

// Mixtral-8x7B's MoE layer: 4,096 tokens, hidden 4,096, ffn 14,336, 8 experts, top-2, SwiGLU.
MoeLayerSpec mixtral_spec(double skew) {
  MoeLayerSpec spec;
  spec.tokens = 4096;
  spec.hidden = 4096;
  spec.ffn_hidden = 14336;
  spec.experts = 8;
  spec.top_k = 2;
  spec.routing_skew = skew;
  spec.reference_tokens = 4; // the CPU FFN costs ~0.2 GFLOP per routed token
  return spec;
}

TEST(MoeLayerGpu, Mixtral8x7bBalanced) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(1);
  const MoeLayerResult result = run_one_gpu(mixtral_spec(0.0));
  std::cout << "Mixtral-8x7B layer, balanced, EP=1:\n" << describe(result);
  EXPECT_TRUE(result.all_passed()) << describe(result);
  EXPECT_EQ(total_rows(result), 4096 * 2);
}

TEST(MoeLayerGpu, Mixtral8x7bSkewed) {
  FOLDPLAN_SKIP_WITHOUT_GPUS(1);
  const MoeLayerResult result = run_one_gpu(mixtral_spec(1.0));
  std::cout << "Mixtral-8x7B layer, skew 1.0, EP=1:\n" << describe(result);
  EXPECT_TRUE(result.all_passed()) << describe(result);
  EXPECT_GT(result.tokens_per_local_expert.front(), result.tokens_per_local_expert.back());
}

} // namespace
} // namespace foldplan::runtime
