// One MoE layer on the GPUs of an EP group, Megatron-Core's alltoall dispatcher step by step, then
// checked against the CPU reference on the same data copied back (moe_layer_checks.hpp).
#include "runtime/moe_layer.hpp"

#include <algorithm>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <type_traits>

#include <cuda_bf16.h>
#include <fmt/format.h>

#include "core/errors.hpp"
#include "core/expert_capacity.hpp"
#include "kernels/moe_expert_ops.hpp"
#include "kernels/moe_random.hpp"
#include "kernels/moe_routing.hpp"

namespace foldplan::runtime {

bool MoeLayerResult::all_passed() const {
  return std::all_of(checks.begin(), checks.end(),
                     [](const MoeLayerCheck& check) { return check.passed; });
}

namespace {

using bf16 = __nv_bfloat16;

// Every CUDA, NCCL and cuBLAS call: a failure throws naming the call, the EP rank and the line.
struct CallSite {
  int rank;
  int line;
};
void throw_failure(const CallSite& site, const char* call, const std::string& what) {
  throw std::runtime_error(
      fmt::format("moe_layer_gpu.cpp:{} (EP rank {}): {}: {}", site.line, site.rank, call, what));
}
void check(cudaError_t status, const CallSite& site, const char* call) {
  if (status != cudaSuccess)
    throw_failure(site, call, cudaGetErrorString(status));
}
void check(ncclResult_t status, const CallSite& site, const char* call) {
  if (status != ncclSuccess)
    throw_failure(site, call, ncclGetErrorString(status));
}
void check(cublasStatus_t status, const CallSite& site, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw_failure(site, call, cublasGetStatusString(status));
}
#define FOLDPLAN_CHECK(call) check((call), CallSite{ep_rank_for_errors, __LINE__}, #call)

struct CudaFree {
  void operator()(void* pointer) const { cudaFree(pointer); }
};
template <typename T> class DeviceArray {
public:
  DeviceArray() = default;
  explicit DeviceArray(std::int64_t count) { resize(count); }
  // Grows only: the timed pass reuses what the first pass allocated.
  void resize(std::int64_t count) {
    if (count <= capacity_)
      return;
    void* pointer = nullptr;
    const cudaError_t status = cudaMalloc(
        &pointer, sizeof(T) * static_cast<std::size_t>(std::max<std::int64_t>(count, 1)));
    if (status != cudaSuccess)
      throw std::runtime_error(
          fmt::format("cudaMalloc of {} bytes: {}", sizeof(T) * count, cudaGetErrorString(status)));
    memory_.reset(pointer);
    capacity_ = count;
  }
  T* get() const { return static_cast<T*>(memory_.get()); }

private:
  std::unique_ptr<void, CudaFree> memory_;
  std::int64_t capacity_ = 0;
};

std::size_t at(std::int64_t index) {
  return static_cast<std::size_t>(index);
}

// Ordered on `stream` (which may be non-blocking), then waited for.
template <typename T>
std::vector<T> copy_to_host(const T* device, std::int64_t count, cudaStream_t stream) {
  std::vector<T> host(at(count));
  if (count > 0 && (cudaMemcpyAsync(host.data(), device, sizeof(T) * at(count),
                                    cudaMemcpyDeviceToHost, stream) != cudaSuccess ||
                    cudaStreamSynchronize(stream) != cudaSuccess))
    throw std::runtime_error("copy of a result to the host failed");
  return host;
}

std::vector<float> widen(const std::vector<bf16>& values) {
  std::vector<float> out(values.size());
  std::transform(values.begin(), values.end(), out.begin(),
                 [](bf16 value) { return __bfloat162float(value); });
  return out;
}

void validate(const MoeLayerSpec& spec, int ep_size, int etp_size) {
  if (spec.tokens < 1)
    throw InputError("moe.tokens", fmt::format("{} is not a positive integer", spec.tokens));
  if (spec.hidden < 8 || spec.hidden % 8 != 0)
    throw InputError("moe.hidden",
                     fmt::format("{}: the permute kernels move 8 bf16 at a time", spec.hidden));
  if (spec.experts < 1 || spec.experts % ep_size != 0)
    throw InputError("moe.experts",
                     fmt::format("{} is not divisible by the EP size {}", spec.experts, ep_size));
  if (spec.top_k < 1 || spec.top_k > std::min(spec.experts, 16))
    throw InputError("moe.top_k", fmt::format("{} is not in [1, min(experts {}, 16)]", spec.top_k,
                                              spec.experts));
  if (spec.ffn_hidden < 1 || spec.ffn_hidden % etp_size != 0)
    throw InputError("moe.ffn_hidden", fmt::format("{} is not divisible by the ETP size {}",
                                                   spec.ffn_hidden, etp_size));
  if (!(spec.capacity_factor >= 0))
    throw InputError("moe.capacity_factor",
                     fmt::format("{} is negative (0 means dropless)", spec.capacity_factor));
  if (spec.pad_to_capacity && spec.capacity_factor == 0)
    throw InputError("moe.pad_to_capacity", "padding to capacity needs a capacity factor");
  if (!(spec.routing_skew >= 0))
    throw InputError("moe.routing_skew", fmt::format("{} is negative", spec.routing_skew));
}

// Row counts of the exchange, known on the host after the count all-gather (Megatron's
// preprocess: the [E] counts all-gathered, then the splits on the CPU).
struct Splits {
  std::vector<std::int64_t> send_rows;           // [EP] rows this rank sends to each peer
  std::vector<std::int64_t> receive_rows;        // [EP] rows it receives from each
  std::vector<std::int64_t> gathered_chunk_rows; // [ETP][EP][E_l] rows after the ETP all-gather
  std::int64_t received_total = 0, gathered_total = 0;
};

std::vector<std::int64_t> offsets_of(const std::vector<std::int64_t>& counts) {
  std::vector<std::int64_t> offsets(counts.size() + 1, 0);
  std::partial_sum(counts.begin(), counts.end(), offsets.begin() + 1);
  return offsets;
}

class MoeLayerRun {
public:
  MoeLayerRun(const MoeLayerSpec& spec, ncclComm_t ep, ncclComm_t etp, cudaStream_t stream,
              cublasHandle_t cublas)
      : spec_(spec), ep_(ep), etp_(etp), stream_(stream), cublas_(cublas) {
    FOLDPLAN_CHECK(ncclCommCount(ep, &ep_size_));
    FOLDPLAN_CHECK(ncclCommUserRank(ep, &ep_rank_));
    ep_rank_for_errors = ep_rank_;
    if (etp) {
      FOLDPLAN_CHECK(ncclCommCount(etp, &etp_size_));
      FOLDPLAN_CHECK(ncclCommUserRank(etp, &etp_rank_));
    }
    validate(spec, ep_size_, etp_size_);
    local_experts_ = spec.experts / ep_size_;
    ffn_local_ = spec.ffn_hidden / etp_size_;
    fc1_rows_ = spec.gated ? 2 * ffn_local_ : ffn_local_;
    dims_.tokens = spec.tokens;
    dims_.experts = spec.experts;
    dims_.top_k = spec.top_k;
    dims_.capacity = spec.capacity_factor > 0 ? expert_capacity(spec.tokens, spec.top_k,
                                                                spec.experts, spec.capacity_factor)
                                              : -1;
    dims_.pad_to_capacity = spec.pad_to_capacity;
    dims_.drop_by_position = spec.drop_by_position;
    allocate_and_fill();
    for (cudaEvent_t& event : events_)
      FOLDPLAN_CHECK(cudaEventCreate(&event));
  }
  ~MoeLayerRun() {
    for (cudaEvent_t event : events_)
      cudaEventDestroy(event);
  }
  MoeLayerRun(const MoeLayerRun&) = delete;
  MoeLayerRun& operator=(const MoeLayerRun&) = delete;

  MoeLayerResult run() {
    forward(); // warm-up: cuBLAS heuristics, NCCL connections, buffer sizes
    forward();
    MoeLayerResult result;
    const char* stage_names[] = {"router",  "permute", "dispatch",
                                 "experts", "combine", "unpermute"};
    for (std::size_t stage = 0; stage < std::size(stage_names); ++stage) {
      float milliseconds = 0;
      FOLDPLAN_CHECK(cudaEventElapsedTime(&milliseconds, events_[stage], events_[stage + 1]));
      result.stage_seconds.emplace_back(stage_names[stage], milliseconds * 1e-3);
    }
    const std::vector<std::int64_t>& chunks = splits_.gathered_chunk_rows;
    result.tokens_per_local_expert.assign(at(local_experts_), 0);
    for (std::size_t chunk = 0; chunk < chunks.size(); ++chunk)
      result.tokens_per_local_expert[chunk % at(local_experts_)] += chunks[chunk];
    const MoeLayerSnapshot snapshot = take_snapshot();
    result.dropped_tokens = spec_.tokens * spec_.top_k -
                            std::accumulate(snapshot.kept_per_expert.begin(),
                                            snapshot.kept_per_expert.end(), std::int64_t{0});
    MoeCapacityRule rule;
    if (spec_.capacity_factor > 0)
      rule.capacity_factor = spec_.capacity_factor;
    rule.policy =
        spec_.drop_by_position ? kernels::MoeDropPolicy::position : kernels::MoeDropPolicy::probs;
    rule.pad_to_capacity = spec_.pad_to_capacity;
    result.checks = check_moe_layer(snapshot, rule, spec_.reference_tokens);
    return result;
  }

private:
  void allocate_and_fill() {
    const std::int64_t tokens = spec_.tokens, hidden = spec_.hidden;
    const int experts = spec_.experts;
    tokens_ = DeviceArray<bf16>(tokens * hidden);
    router_weight_ = DeviceArray<bf16>(experts * hidden);
    logits_ = DeviceArray<float>(tokens * experts);
    expert_bias_ = DeviceArray<float>(experts);
    topk_experts_ = DeviceArray<std::int32_t>(tokens * spec_.top_k);
    topk_probs_ = DeviceArray<float>(tokens * spec_.top_k);
    expert_tokens_ = DeviceArray<std::int32_t>(experts * tokens);
    expert_probs_ = DeviceArray<float>(experts * tokens);
    kept_per_expert_ = DeviceArray<std::int32_t>(experts);
    rows_per_expert_ = DeviceArray<std::int32_t>(experts);
    counts_gathered_ = DeviceArray<std::int32_t>(experts * ep_size_);
    choice_row_ = DeviceArray<std::int32_t>(tokens * spec_.top_k);
    const std::int64_t max_rows = kernels::moe_max_rows(dims_);
    row_token_ = DeviceArray<std::int32_t>(max_rows);
    row_prob_ = DeviceArray<float>(max_rows);
    permuted_ = DeviceArray<bf16>(max_rows * hidden);
    combined_rows_ = DeviceArray<bf16>(max_rows * hidden);
    output_ = DeviceArray<bf16>(tokens * hidden);
    fc1_weight_ = DeviceArray<bf16>(local_experts_ * fc1_rows_ * hidden);
    fc2_weight_ = DeviceArray<bf16>(local_experts_ * hidden * ffn_local_);

    const auto token_stream =
        kernels::moe_token_stream(static_cast<std::uint64_t>(ep_rank_ * etp_size_ + etp_rank_));
    FOLDPLAN_CHECK(kernels::fill_moe_random({tokens, hidden, hidden, 0, tokens, 0, 0}, spec_.seed,
                                            token_stream, kernels::kMoeTokenScale, tokens_.get(),
                                            stream_));
    FOLDPLAN_CHECK(kernels::fill_moe_random(
        {experts, hidden, hidden, 0, experts, 0, 0}, spec_.seed, kernels::moe_router_stream(),
        kernels::moe_weight_scale(hidden), router_weight_.get(), stream_));
    for (int local = 0; local < local_experts_; ++local) {
      const auto expert = static_cast<std::uint64_t>(ep_rank_ * local_experts_ + local);
      // This ETP rank's slice: rows [etp·F/ETP, (etp+1)·F/ETP) of the gate half (and of the up
      // half, which starts at row F) of fc1; the same columns of fc2.
      const std::int64_t first = etp_rank_ * ffn_local_;
      const kernels::RandomMatrixSlice fc1{
          fc1_rows_, hidden, hidden, 0, ffn_local_, first, spec_.ffn_hidden + first};
      FOLDPLAN_CHECK(kernels::fill_moe_random(
          fc1, spec_.seed, kernels::moe_fc1_stream(expert), kernels::moe_weight_scale(hidden),
          fc1_weight_.get() + local * fc1_rows_ * hidden, stream_));
      const kernels::RandomMatrixSlice fc2{hidden, ffn_local_, spec_.ffn_hidden, first, hidden,
                                           0,      0};
      FOLDPLAN_CHECK(kernels::fill_moe_random(fc2, spec_.seed, kernels::moe_fc2_stream(expert),
                                              kernels::moe_weight_scale(spec_.ffn_hidden),
                                              fc2_weight_.get() + local * hidden * ffn_local_,
                                              stream_));
    }
    skew_bias_ = kernels::moe_skew_bias(experts, spec_.routing_skew);
    FOLDPLAN_CHECK(cudaMemcpyAsync(expert_bias_.get(), skew_bias_.data(),
                                   sizeof(float) * skew_bias_.size(), cudaMemcpyHostToDevice,
                                   stream_));
    FOLDPLAN_CHECK(cudaStreamSynchronize(stream_));
  }

  kernels::MoeRoutingBuffers routing_buffers() const {
    return {topk_experts_.get(), topk_probs_.get(),      expert_tokens_.get(),
            expert_probs_.get(), kept_per_expert_.get(), rows_per_expert_.get(),
            choice_row_.get(),   row_token_.get(),       row_prob_.get()};
  }

  // y[rows, m] = x[rows, k] · w[m, k]ᵀ, all row-major (column-major: y ᵀ = w · xᵀ).
  template <typename Out>
  void gemm(const bf16* x, const bf16* w, Out* y, std::int64_t rows, std::int64_t m,
            std::int64_t k) {
    if (rows == 0)
      return;
    const float one = 1, zero = 0;
    const cudaDataType_t out_type = std::is_same_v<Out, float> ? CUDA_R_32F : CUDA_R_16BF;
    FOLDPLAN_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(m),
                                static_cast<int>(rows), static_cast<int>(k), &one, w, CUDA_R_16BF,
                                static_cast<int>(k), x, CUDA_R_16BF, static_cast<int>(k), &zero, y,
                                out_type, static_cast<int>(m), CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
  }

  // The count exchange: each rank's rows per expert all-gathered over EP, then (ETP > 1) each
  // ETP peer's received chunk sizes all-gathered over ETP. Blocks the host, as Megatron does.
  void exchange_counts() {
    const int experts = spec_.experts;
    FOLDPLAN_CHECK(ncclAllGather(rows_per_expert_.get(), counts_gathered_.get(),
                                 static_cast<std::size_t>(experts), ncclInt32, ep_, stream_));
    const std::vector<std::int32_t> counts =
        copy_to_host(counts_gathered_.get(), std::int64_t{experts} * ep_size_, stream_);
    const auto count = [&](int source, int expert) {
      return static_cast<std::int64_t>(counts[at(std::int64_t{source} * experts + expert)]);
    };
    splits_.send_rows.assign(at(ep_size_), 0);
    splits_.receive_rows.assign(at(ep_size_), 0);
    std::vector<std::int64_t> received_chunks(at(ep_size_ * local_experts_));
    for (int peer = 0; peer < ep_size_; ++peer) {
      for (int local = 0; local < local_experts_; ++local) {
        splits_.send_rows[at(peer)] += count(ep_rank_, peer * local_experts_ + local);
        const std::int64_t rows = count(peer, ep_rank_ * local_experts_ + local);
        splits_.receive_rows[at(peer)] += rows;
        received_chunks[at(peer * local_experts_ + local)] = rows;
      }
    }
    splits_.received_total =
        std::accumulate(splits_.receive_rows.begin(), splits_.receive_rows.end(), std::int64_t{0});
    splits_.gathered_chunk_rows = received_chunks;
    if (etp_size_ > 1) {
      std::vector<std::int32_t> mine(received_chunks.begin(), received_chunks.end());
      const auto chunk_count = static_cast<std::int64_t>(mine.size());
      chunk_counts_.resize(chunk_count * (etp_size_ + 1));
      FOLDPLAN_CHECK(cudaMemcpyAsync(chunk_counts_.get(), mine.data(),
                                     sizeof(std::int32_t) * mine.size(), cudaMemcpyHostToDevice,
                                     stream_));
      FOLDPLAN_CHECK(ncclAllGather(chunk_counts_.get(), chunk_counts_.get() + chunk_count,
                                   mine.size(), ncclInt32, etp_, stream_));
      const std::vector<std::int32_t> all =
          copy_to_host(chunk_counts_.get() + chunk_count, chunk_count * etp_size_, stream_);
      splits_.gathered_chunk_rows.assign(all.begin(), all.end());
    }
    splits_.gathered_total = std::accumulate(splits_.gathered_chunk_rows.begin(),
                                             splits_.gathered_chunk_rows.end(), std::int64_t{0});
  }

  // All-to-all-v over EP: `send` holds rows for each peer in peer order, `receive` gets them in
  // source order. Grouped send/recv, as torch's all_to_all_single does it on NCCL.
  void all_to_all(const bf16* send, const std::vector<std::int64_t>& send_rows, bf16* receive,
                  const std::vector<std::int64_t>& receive_rows) {
    const std::int64_t hidden = spec_.hidden;
    const std::vector<std::int64_t> send_offsets = offsets_of(send_rows);
    const std::vector<std::int64_t> receive_offsets = offsets_of(receive_rows);
    FOLDPLAN_CHECK(ncclGroupStart());
    for (int peer = 0; peer < ep_size_; ++peer) {
      const auto p = at(peer);
      if (send_rows[p] > 0)
        FOLDPLAN_CHECK(ncclSend(send + send_offsets[p] * hidden, at(send_rows[p] * hidden),
                                ncclBfloat16, peer, ep_, stream_));
      if (receive_rows[p] > 0)
        FOLDPLAN_CHECK(ncclRecv(receive + receive_offsets[p] * hidden, at(receive_rows[p] * hidden),
                                ncclBfloat16, peer, ep_, stream_));
    }
    FOLDPLAN_CHECK(ncclGroupEnd());
  }

  // Rows of the gathered buffer, laid out [ETP][EP source][local expert], regrouped expert-major
  // ([local expert][ETP][EP source]) for the GEMMs — Megatron's sort_chunks_by_idxs — or back.
  void sort_chunks(const bf16* from, bf16* to, bool to_expert_major) {
    const std::vector<std::int64_t>& rows = splits_.gathered_chunk_rows;
    const std::vector<std::int64_t> rank_major = offsets_of(rows);
    std::int64_t expert_major = 0;
    for (int local = 0; local < local_experts_; ++local) {
      for (int source = 0; source < etp_size_ * ep_size_; ++source) {
        const std::size_t chunk = at(std::int64_t{source} * local_experts_ + local);
        const std::int64_t bytes = rows[chunk] * spec_.hidden * std::int64_t{sizeof(bf16)};
        const std::int64_t from_row = to_expert_major ? rank_major[chunk] : expert_major;
        const std::int64_t to_row = to_expert_major ? expert_major : rank_major[chunk];
        if (bytes > 0)
          FOLDPLAN_CHECK(cudaMemcpyAsync(to + to_row * spec_.hidden, from + from_row * spec_.hidden,
                                         at(bytes), cudaMemcpyDeviceToDevice, stream_));
        expert_major += rows[chunk];
      }
    }
  }

  void forward() {
    const std::int64_t tokens = spec_.tokens, hidden = spec_.hidden;
    const kernels::MoeRoutingBuffers buffers = routing_buffers();

    FOLDPLAN_CHECK(cudaEventRecord(events_[0], stream_));
    gemm(tokens_.get(), router_weight_.get(), logits_.get(), tokens, spec_.experts, hidden);
    FOLDPLAN_CHECK(
        kernels::moe_topk_softmax(dims_, logits_.get(), expert_bias_.get(), buffers, stream_));

    FOLDPLAN_CHECK(cudaEventRecord(events_[1], stream_));
    FOLDPLAN_CHECK(kernels::moe_dispatch_plan(dims_, buffers, stream_));
    // The row count is data-dependent unless padding; the count exchange needs it anyway.
    const std::vector<std::int32_t> rows_per_expert =
        copy_to_host(rows_per_expert_.get(), spec_.experts, stream_);
    rows_ = std::accumulate(rows_per_expert.begin(), rows_per_expert.end(), std::int64_t{0});
    FOLDPLAN_CHECK(kernels::moe_permute(tokens_.get(), hidden, row_token_.get(), rows_,
                                        permuted_.get(), stream_));

    FOLDPLAN_CHECK(cudaEventRecord(events_[2], stream_));
    exchange_counts();
    received_.resize(splits_.received_total * hidden);
    gathered_.resize(splits_.gathered_total * hidden);
    expert_input_.resize(splits_.gathered_total * hidden);
    all_to_all(permuted_.get(), splits_.send_rows, received_.get(), splits_.receive_rows);
    const bf16* rank_major = received_.get();
    if (etp_size_ > 1) {
      all_gather_over_etp(received_.get(), gathered_.get());
      rank_major = gathered_.get();
    }
    sort_chunks(rank_major, expert_input_.get(), true);

    FOLDPLAN_CHECK(cudaEventRecord(events_[3], stream_));
    run_experts();

    FOLDPLAN_CHECK(cudaEventRecord(events_[4], stream_));
    sort_chunks(expert_input_.get(), gathered_.get(), false); // expert outputs, back rank-major
    const bf16* to_return = gathered_.get();
    if (etp_size_ > 1) {
      reduce_scatter_over_etp(gathered_.get(), received_.get());
      to_return = received_.get();
    }
    all_to_all(to_return, splits_.receive_rows, combined_rows_.get(), splits_.send_rows);

    FOLDPLAN_CHECK(cudaEventRecord(events_[5], stream_));
    FOLDPLAN_CHECK(kernels::moe_unpermute(combined_rows_.get(), hidden, tokens, spec_.top_k,
                                          choice_row_.get(), topk_probs_.get(), output_.get(),
                                          stream_));
    FOLDPLAN_CHECK(cudaEventRecord(events_[6], stream_));
    FOLDPLAN_CHECK(cudaStreamSynchronize(stream_));
  }

  // fc1 → activation → fc2 per local expert over its rows; the output overwrites the input rows.
  void run_experts() {
    const std::int64_t hidden = spec_.hidden;
    std::vector<std::int64_t> rows_of_expert(at(local_experts_), 0);
    for (std::size_t chunk = 0; chunk < splits_.gathered_chunk_rows.size(); ++chunk)
      rows_of_expert[chunk % at(local_experts_)] += splits_.gathered_chunk_rows[chunk];
    const std::int64_t most = *std::max_element(rows_of_expert.begin(), rows_of_expert.end());
    fc1_out_.resize(most * fc1_rows_);
    activated_.resize(most * ffn_local_);
    std::int64_t first_row = 0;
    for (int local = 0; local < local_experts_; ++local) {
      const std::int64_t rows = rows_of_expert[at(local)];
      bf16* rows_data = expert_input_.get() + first_row * hidden;
      gemm(rows_data, fc1_weight_.get() + local * fc1_rows_ * hidden, fc1_out_.get(), rows,
           fc1_rows_, hidden);
      FOLDPLAN_CHECK(kernels::moe_activation(fc1_out_.get(), rows, ffn_local_, spec_.gated,
                                             activated_.get(), stream_));
      gemm(activated_.get(), fc2_weight_.get() + local * hidden * ffn_local_, rows_data, rows,
           hidden, ffn_local_);
      first_row += rows;
    }
  }

  // Rows of each ETP rank's block, in the [ETP][EP][E_l] chunk layout.
  std::vector<std::int64_t> etp_block_rows() const {
    std::vector<std::int64_t> rows(at(etp_size_), 0);
    const std::size_t per_rank = at(std::int64_t{ep_size_} * local_experts_);
    for (std::size_t chunk = 0; chunk < splits_.gathered_chunk_rows.size(); ++chunk)
      rows[chunk / per_rank] += splits_.gathered_chunk_rows[chunk];
    return rows;
  }

  // All-gather-v over ETP: NCCL has no variable all-gather, so one broadcast per root, grouped.
  void all_gather_over_etp(const bf16* mine, bf16* gathered) {
    const std::vector<std::int64_t> rows = etp_block_rows();
    const std::vector<std::int64_t> offsets = offsets_of(rows);
    FOLDPLAN_CHECK(ncclGroupStart());
    for (int root = 0; root < etp_size_; ++root) {
      const auto r = at(root);
      FOLDPLAN_CHECK(ncclBroadcast(mine, gathered + offsets[r] * spec_.hidden,
                                   at(rows[r] * spec_.hidden), ncclBfloat16, root, etp_, stream_));
    }
    FOLDPLAN_CHECK(ncclGroupEnd());
  }

  // Reduce-scatter-v over ETP: the partial fc2 outputs summed, each rank keeping its own block;
  // one reduce per root, grouped.
  void reduce_scatter_over_etp(const bf16* partial, bf16* mine) {
    const std::vector<std::int64_t> rows = etp_block_rows();
    const std::vector<std::int64_t> offsets = offsets_of(rows);
    FOLDPLAN_CHECK(ncclGroupStart());
    for (int root = 0; root < etp_size_; ++root) {
      const auto r = at(root);
      FOLDPLAN_CHECK(ncclReduce(partial + offsets[r] * spec_.hidden, mine,
                                at(rows[r] * spec_.hidden), ncclBfloat16, ncclSum, root, etp_,
                                stream_));
    }
    FOLDPLAN_CHECK(ncclGroupEnd());
  }

  MoeLayerSnapshot take_snapshot() {
    const std::int64_t tokens = spec_.tokens, hidden = spec_.hidden;
    const std::int64_t choices = tokens * spec_.top_k;
    MoeLayerSnapshot gpu;
    gpu.tokens = tokens;
    gpu.hidden = hidden;
    gpu.ffn_hidden = spec_.ffn_hidden;
    gpu.experts = spec_.experts;
    gpu.top_k = spec_.top_k;
    gpu.gated = spec_.gated;
    gpu.seed = spec_.seed;
    gpu.x = widen(copy_to_host(tokens_.get(), tokens * hidden, stream_));
    gpu.logits = copy_to_host(logits_.get(), tokens * spec_.experts, stream_);
    gpu.expert_bias = skew_bias_;
    gpu.topk_experts = copy_to_host(topk_experts_.get(), choices, stream_);
    gpu.topk_probs = copy_to_host(topk_probs_.get(), choices, stream_);
    gpu.kept_per_expert = copy_to_host(kept_per_expert_.get(), spec_.experts, stream_);
    gpu.rows_per_expert = copy_to_host(rows_per_expert_.get(), spec_.experts, stream_);
    gpu.choice_row = copy_to_host(choice_row_.get(), choices, stream_);
    gpu.row_token = copy_to_host(row_token_.get(), rows_, stream_);
    gpu.row_prob = copy_to_host(row_prob_.get(), rows_, stream_);
    gpu.permuted = widen(copy_to_host(permuted_.get(), rows_ * hidden, stream_));
    gpu.output = widen(copy_to_host(output_.get(), tokens * hidden, stream_));

    // unpermute(permute(x)) with weight 1, summed in fp32 so c·x stays exact.
    DeviceArray<float> restored(tokens * hidden);
    FOLDPLAN_CHECK(kernels::moe_unpermute(permuted_.get(), hidden, tokens, spec_.top_k,
                                          choice_row_.get(), nullptr, restored.get(), stream_));
    FOLDPLAN_CHECK(cudaStreamSynchronize(stream_));
    gpu.restored = copy_to_host(restored.get(), tokens * hidden, stream_);

    // Dispatch and combine with identity experts: every row must come home unchanged.
    all_to_all(permuted_.get(), splits_.send_rows, received_.get(), splits_.receive_rows);
    all_to_all(received_.get(), splits_.receive_rows, combined_rows_.get(), splits_.send_rows);
    DeviceArray<std::int64_t> totals(2);
    const std::int64_t mine[2] = {
        std::accumulate(splits_.send_rows.begin(), splits_.send_rows.end(), std::int64_t{0}),
        splits_.received_total};
    FOLDPLAN_CHECK(
        cudaMemcpyAsync(totals.get(), mine, sizeof(mine), cudaMemcpyHostToDevice, stream_));
    FOLDPLAN_CHECK(ncclAllReduce(totals.get(), totals.get(), 2, ncclInt64, ncclSum, ep_, stream_));
    FOLDPLAN_CHECK(cudaStreamSynchronize(stream_));
    gpu.round_trip = widen(copy_to_host(combined_rows_.get(), rows_ * hidden, stream_));
    const std::vector<std::int64_t> group = copy_to_host(totals.get(), 2, stream_);
    gpu.rows_sent_in_group = group[0];
    gpu.rows_received_in_group = group[1];
    return gpu;
  }

  const MoeLayerSpec& spec_;
  ncclComm_t ep_, etp_;
  cudaStream_t stream_;
  cublasHandle_t cublas_;
  int ep_size_ = 1, ep_rank_ = 0, etp_size_ = 1, etp_rank_ = 0;
  int ep_rank_for_errors = 0;
  int local_experts_ = 0;
  std::int64_t ffn_local_ = 0, fc1_rows_ = 0, rows_ = 0;
  kernels::MoeRoutingDims dims_;
  std::vector<float> skew_bias_;
  Splits splits_;
  cudaEvent_t events_[7] = {};

  DeviceArray<bf16> tokens_, router_weight_, permuted_, combined_rows_, output_;
  DeviceArray<bf16> received_, gathered_, expert_input_, fc1_out_, activated_;
  DeviceArray<bf16> fc1_weight_, fc2_weight_;
  DeviceArray<float> logits_, expert_bias_, topk_probs_, expert_probs_, row_prob_;
  DeviceArray<std::int32_t> topk_experts_, expert_tokens_, kept_per_expert_, rows_per_expert_;
  DeviceArray<std::int32_t> counts_gathered_, chunk_counts_, choice_row_, row_token_;
};

} // namespace

MoeLayerResult run_moe_layer(const MoeLayerSpec& spec, ncclComm_t ep, ncclComm_t etp,
                             cudaStream_t stream, cublasHandle_t cublas) {
  const int ep_rank_for_errors = -1;
  FOLDPLAN_CHECK(cublasSetStream(cublas, stream));
  MoeLayerRun run(spec, ep, etp, stream, cublas);
  return run.run();
}

} // namespace foldplan::runtime
