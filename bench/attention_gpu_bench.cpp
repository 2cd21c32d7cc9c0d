// Times the attention kernels on the GPU: forward and backward TFLOP/s (FlashAttention's count,
// attention_dims.hpp) over sequence lengths, head dims and GQA ratios, at batch 1 and 32 query
// heads as the reference table in docs/attention.md. CUDA events around each call after warm-up;
// the median of the timed calls. Prints a markdown table and writes JSON.
// Usage: attention_gpu_bench [--json FILE] [--quick]
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/errors.hpp"
#include "core/file_io.hpp"
#include "kernels/attention.hpp"
#include "kernels/attention_launch.hpp"
#include "kernels/attention_reference.hpp"

namespace {

using foldplan::kernels::AttentionBackwardTiles;
using foldplan::kernels::AttentionDims;
using foldplan::kernels::AttentionForwardTiles;

#define BENCH_CUDA(call)                                                                           \
  do {                                                                                             \
    if (const cudaError_t bench_error = (call); bench_error != cudaSuccess) {                      \
      throw std::runtime_error(fmt::format("{}:{}: {}: {}", __FILE__, __LINE__, #call,             \
                                           cudaGetErrorString(bench_error)));                      \
    }                                                                                              \
  } while (false)

constexpr int warmup_calls = 3;
constexpr int timed_calls = 10;

// Buffers for the largest case, reused by all; filled once with random bf16 in [-1, 1).
struct Buffers {
  __nv_bfloat16 *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr, *d_o = nullptr,
                *dq = nullptr, *dk = nullptr, *dv = nullptr;
  float* lse = nullptr;
  void* workspace = nullptr;
};

void fill_random(__nv_bfloat16* device, std::int64_t count, std::uint32_t seed) {
  std::vector<__nv_bfloat16> host(count);
  std::uint32_t state = seed * 2654435761u + 1;
  for (auto& value : host) {
    state ^= state << 13; // xorshift32: fast enough for 10⁸ values
    state ^= state >> 17;
    state ^= state << 5;
    value = __float2bfloat16(static_cast<float>(state >> 8) * 0x1p-23f - 1.0f);
  }
  BENCH_CUDA(
      cudaMemcpy(device, host.data(), host.size() * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice));
}

// Median milliseconds of `timed_calls` calls of `call`, each between its own events.
template <typename Call> double median_ms(Call&& call) {
  for (int i = 0; i < warmup_calls; ++i) {
    BENCH_CUDA(call());
  }
  cudaEvent_t start, stop;
  BENCH_CUDA(cudaEventCreate(&start));
  BENCH_CUDA(cudaEventCreate(&stop));
  std::vector<double> times;
  for (int i = 0; i < timed_calls; ++i) {
    BENCH_CUDA(cudaEventRecord(start));
    BENCH_CUDA(call());
    BENCH_CUDA(cudaEventRecord(stop));
    BENCH_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  BENCH_CUDA(cudaEventDestroy(start));
  BENCH_CUDA(cudaEventDestroy(stop));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

constexpr AttentionForwardTiles forward_tiles[] = {AttentionForwardTiles::warps8_rows16,
                                                   AttentionForwardTiles::warps4_rows32};
constexpr const char* forward_tile_names[] = {"warps8_rows16", "warps4_rows32"};
constexpr AttentionBackwardTiles backward_tiles[] = {AttentionBackwardTiles::keys64_warps8,
                                                     AttentionBackwardTiles::keys64_warps4,
                                                     AttentionBackwardTiles::keys128_warps8};
constexpr const char* backward_tile_names[] = {"keys64_warps8", "keys64_warps4", "keys128_warps8"};

// Median milliseconds of every tile shape, forward then backward.
struct Row {
  AttentionDims dims;
  std::vector<double> forward_ms, backward_ms;
  bool finite = false;
};

bool first_row_finite(const __nv_bfloat16* device, std::size_t count) {
  std::vector<__nv_bfloat16> probe(count);
  BENCH_CUDA(
      cudaMemcpy(probe.data(), device, count * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost));
  return std::all_of(probe.begin(), probe.end(),
                     [](__nv_bfloat16 x) { return std::isfinite(__bfloat162float(x)); });
}

Row measure(const AttentionDims& dims, const Buffers& b) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(dims.qk_head_dim));
  Row row{dims, {}, {}, false};
  for (const auto tiles : forward_tiles) {
    row.forward_ms.push_back(median_ms([&] {
      return foldplan::kernels::attention_forward_with_tiles(tiles, dims, scale, b.q, b.k, b.v, b.o,
                                                             b.lse, nullptr);
    }));
  }
  // The backward below reads o and lse of the default forward, as a training step would.
  BENCH_CUDA(foldplan::kernels::attention_forward(dims, scale, b.q, b.k, b.v, b.o, b.lse, nullptr));
  for (const auto tiles : backward_tiles) {
    row.backward_ms.push_back(median_ms([&] {
      return foldplan::kernels::attention_backward_with_tiles(tiles, dims, scale, b.q, b.k, b.v,
                                                              b.o, b.d_o, b.lse, b.dq, b.dk, b.dv,
                                                              b.workspace, nullptr);
    }));
  }
  BENCH_CUDA(cudaDeviceSynchronize());
  // Correctness is the GPU test's job; this only guards against a broken launch timing nothing.
  const std::size_t first_row = static_cast<std::size_t>(dims.heads) * dims.v_head_dim;
  row.finite = first_row_finite(b.o, first_row) && first_row_finite(b.dq, first_row);
  return row;
}

double tflops(double flops, double ms) {
  return flops / (ms * 1e-3) / 1e12;
}

} // namespace

int main(int argc, char** argv) {
  std::string json_path;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (arg == "--quick") {
      quick = true;
    } else {
      fmt::print(stderr, "attention_gpu_bench: error: unknown argument {}\n", arg);
      return 2;
    }
  }
  try {
    std::vector<AttentionDims> cases;
    const std::vector<int> lengths =
        quick ? std::vector<int>{4096} : std::vector<int>{1024, 2048, 4096, 8192, 16384};
    for (const int dim : {128, 64}) {
      for (const int kv_heads : {8, 32}) {
        for (const int seq : lengths) {
          cases.push_back(AttentionDims{1, 32, kv_heads, seq, seq, dim, dim, true});
        }
      }
    }
    // Full (non-causal) attention and DeepSeek's MLA dims at one length each.
    cases.push_back(AttentionDims{1, 32, 8, 4096, 4096, 128, 128, false});
    cases.push_back(AttentionDims{1, 128, 128, 4096, 4096, 192, 128, true});

    std::int64_t q_max = 0, kv_max = 0, o_max = 0, lse_max = 0;
    std::size_t workspace_max = 0;
    for (const auto& dims : cases) {
      q_max = std::max(q_max, foldplan::kernels::attention_q_elements(dims));
      kv_max = std::max({kv_max, foldplan::kernels::attention_k_elements(dims),
                         foldplan::kernels::attention_v_elements(dims)});
      o_max = std::max(o_max, foldplan::kernels::attention_o_elements(dims));
      lse_max = std::max(lse_max, foldplan::kernels::attention_lse_elements(dims));
      workspace_max =
          std::max(workspace_max, foldplan::kernels::attention_backward_workspace_bytes(dims));
    }
    Buffers b;
    const auto allocate = [](__nv_bfloat16** pointer, std::int64_t count) {
      BENCH_CUDA(cudaMalloc(pointer, static_cast<std::size_t>(count) * sizeof(__nv_bfloat16)));
    };
    allocate(&b.q, q_max);
    allocate(&b.k, kv_max);
    allocate(&b.v, kv_max);
    allocate(&b.o, o_max);
    allocate(&b.d_o, o_max);
    allocate(&b.dq, q_max);
    allocate(&b.dk, kv_max);
    allocate(&b.dv, kv_max);
    BENCH_CUDA(cudaMalloc(&b.lse, static_cast<std::size_t>(lse_max) * sizeof(float)));
    BENCH_CUDA(cudaMalloc(&b.workspace, workspace_max));
    fill_random(b.q, q_max, 1);
    fill_random(b.k, kv_max, 2);
    fill_random(b.v, kv_max, 3);
    fill_random(b.d_o, o_max, 4);

    cudaDeviceProp properties{};
    BENCH_CUDA(cudaGetDeviceProperties(&properties, 0));
    nlohmann::json results = nlohmann::json::array();
    fmt::print("# attention on {} (bf16, batch 1; median of {} after {} warm-up)\n",
               properties.name, timed_calls, warmup_calls);
    fmt::print("| heads/kv | seq | qk/v dims | causal | fwd ms | fwd TFLOP/s | bwd ms | "
               "bwd TFLOP/s | fwd TFLOP/s by tiles ({}) | bwd TFLOP/s by tiles ({}) |\n"
               "|---|---|---|---|---|---|---|---|---|---|\n",
               fmt::join(forward_tile_names, ", "), fmt::join(backward_tile_names, ", "));
    bool all_finite = true;
    for (const auto& dims : cases) {
      const Row row = measure(dims, b);
      all_finite = all_finite && row.finite;
      const double forward = foldplan::kernels::attention_forward_flops(dims);
      const double backward = foldplan::kernels::attention_backward_flops(dims);
      std::vector<double> forward_tflops, backward_tflops;
      nlohmann::json forward_json, backward_json;
      for (std::size_t i = 0; i < row.forward_ms.size(); ++i) {
        forward_tflops.push_back(tflops(forward, row.forward_ms[i]));
        forward_json[forward_tile_names[i]] = {{"ms", row.forward_ms[i]},
                                               {"tflops", forward_tflops.back()}};
      }
      for (std::size_t i = 0; i < row.backward_ms.size(); ++i) {
        backward_tflops.push_back(tflops(backward, row.backward_ms[i]));
        backward_json[backward_tile_names[i]] = {{"ms", row.backward_ms[i]},
                                                 {"tflops", backward_tflops.back()}};
      }
      // The defaults are what attention_forward and attention_backward run.
      const auto forward_default =
          static_cast<std::size_t>(foldplan::kernels::default_attention_forward_tiles(dims));
      const auto backward_default =
          static_cast<std::size_t>(foldplan::kernels::default_attention_backward_tiles);
      const std::size_t backward_index = dims.qk_head_dim > 128 ? 0 : backward_default;
      fmt::print("| {}/{} | {} | {}/{} | {} | {:.3f} | {:.0f} | {:.3f} | {:.0f} | {:.0f} | {:.0f} "
                 "|{}\n",
                 dims.heads, dims.kv_heads, dims.seq_q, dims.qk_head_dim, dims.v_head_dim,
                 dims.causal ? "yes" : "no", row.forward_ms[forward_default],
                 forward_tflops[forward_default], row.backward_ms[backward_index],
                 backward_tflops[backward_index], fmt::join(forward_tflops, " / "),
                 fmt::join(backward_tflops, " / "), row.finite ? "" : " NOT FINITE");
      std::fflush(stdout);
      results.push_back({{"batch", dims.batch},
                         {"heads", dims.heads},
                         {"kv_heads", dims.kv_heads},
                         {"seq", dims.seq_q},
                         {"qk_head_dim", dims.qk_head_dim},
                         {"v_head_dim", dims.v_head_dim},
                         {"causal", dims.causal},
                         {"forward_ms", row.forward_ms[forward_default]},
                         {"forward_tflops", forward_tflops[forward_default]},
                         {"backward_ms", row.backward_ms[backward_index]},
                         {"backward_tflops", backward_tflops[backward_index]},
                         {"forward_by_tiles", forward_json},
                         {"backward_by_tiles", backward_json},
                         {"finite", row.finite}});
    }
    if (!json_path.empty()) {
      const nlohmann::json document{{"device", properties.name},
                                    {"timed_calls", timed_calls},
                                    {"warmup_calls", warmup_calls},
                                    {"results", results}};
      foldplan::write_file_atomically(json_path, document.dump(2) + "\n");
    }
    return all_finite ? 0 : 1;
  } catch (const foldplan::InputError& error) {
    fmt::print(stderr, "attention_gpu_bench: error: {}\n", error.what());
    return 2;
  } catch (const std::exception& error) {
    fmt::print(stderr, "attention_gpu_bench: error: {}\n", error.what());
    return 1;
  }
}
