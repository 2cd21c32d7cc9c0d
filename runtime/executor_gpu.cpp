// The GPU executor. Per local rank a thread that: selects its GPU, joins the NCCL world (unique id
// shared in memory, or from rank 0 through the TCP rendezvous under a launcher), splits a
// communicator for every group family (color: the index of the family's group holding the rank),
// makes a stream per program Stream, allocates synthetic buffers once, runs the MoE layer checks,
// then issues the program warmup + timed times. One watchdog thread per process polls every
// communicator's async error and each rank's step deadline; on either it names the op in flight,
// aborts every communicator (so nothing stays blocked in NCCL) and the run ends with that line.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "kernels/attention.hpp"
#include "kernels/stream_bytes.hpp"
#include "runtime/executor.hpp"
#include "runtime/issue_schedule.hpp"
#include "runtime/moe_layer.hpp"
#include "runtime/preflight.hpp"
#include "runtime/rendezvous.hpp"

namespace foldplan::runtime {
namespace {

using Clock = std::chrono::steady_clock;

// The memory-bound stand-in streams through buffers at most this large (well above the 50 MB L2,
// so the traffic is HBM traffic) instead of allocating an optimizer step's tens of GB.
constexpr double kMemoryBoundBufferCap = 512.0 * 1024 * 1024;
constexpr std::size_t kAlignment = 256;

void check_cuda(cudaError_t status, const std::string& what) {
  if (status != cudaSuccess)
    throw ExecutionError(fmt::format("{}: CUDA error: {}", what, cudaGetErrorString(status)));
}

void check_cublas(cublasStatus_t status, const std::string& what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw ExecutionError(fmt::format("{}: cuBLAS error: {}", what, cublasGetStatusString(status)));
}

// What every local rank and the watchdog share.
struct ProcessState {
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::string failure; // the first failure's line
  bool fail(const std::string& message) {
    const std::lock_guard lock(mutex);
    if (failed.exchange(true))
      return false;
    failure = message;
    return true;
  }
};

// Non-blocking communicators answer ncclInProgress while a call is still being enqueued; NCCL
// refuses the communicator's next call until ncclCommGetAsyncError reports ncclSuccess, so wait
// for that here (host-side enqueueing, not the GPU work). The watchdog reports later errors.
// Once another rank failed (`state`), it stops waiting: the watchdog is about to abort `comm`.
void check_nccl(ncclResult_t status, ncclComm_t comm, const std::string& what,
                const ProcessState* state = nullptr) {
  while (status == ncclInProgress && comm != nullptr) {
    if (state != nullptr && state->failed)
      throw ExecutionError("aborted");
    ncclCommGetAsyncError(comm, &status);
    if (status == ncclInProgress)
      std::this_thread::yield();
  }
  if (status == ncclSuccess || status == ncclInProgress)
    return;
  const char* last = comm != nullptr ? ncclGetLastError(comm) : nullptr;
  throw ExecutionError(fmt::format("{}: NCCL error: {}{}{}", what, ncclGetErrorString(status),
                                   last != nullptr && *last != '\0' ? ": " : "",
                                   last != nullptr ? last : ""));
}

std::size_t aligned(double bytes) {
  const auto whole = static_cast<std::size_t>(std::ceil(std::max(bytes, 0.0)));
  return std::max<std::size_t>(kAlignment, (whole + kAlignment - 1) / kAlignment * kAlignment);
}

std::size_t byte_count(double bytes) {
  return static_cast<std::size_t>(std::llround(bytes));
}

kernels::AttentionDims attention_dims(const AttentionOpShape& shape) {
  return {.batch = static_cast<int>(shape.batch),
          .heads = static_cast<int>(shape.heads),
          .kv_heads = static_cast<int>(shape.kv_heads),
          .seq_q = static_cast<int>(shape.seq_q),
          .seq_kv = static_cast<int>(shape.seq_kv),
          .qk_head_dim = static_cast<int>(shape.qk_head_dim),
          .v_head_dim = static_cast<int>(shape.v_head_dim),
          .causal = shape.causal};
}

struct AttentionBytes {
  double q = 0, k = 0, v = 0, o = 0, lse = 0, workspace = 0;
};

// Refusals about ops that need no GPU to decide: GEMM sizes cuBLAS takes as int, attention shapes
// the kernels do not run. Also sizes the attention buffers.
AttentionBytes check_ops_and_size_attention(const RankProgram& program) {
  AttentionBytes bytes;
  constexpr auto kIntMax = static_cast<double>(std::numeric_limits<int>::max());
  for (const Op& op : program.ops) {
    if (const auto* gemm = std::get_if<GemmShape>(&op.shape)) {
      if (static_cast<double>(std::max({gemm->m, gemm->n, gemm->k, gemm->groups})) > kIntMax)
        throw InputError(fmt::format("program: {}", describe_op(op)),
                         "a GEMM dimension exceeds cuBLAS's int range");
    } else if (const auto* attention = std::get_if<AttentionOpShape>(&op.shape)) {
      const kernels::AttentionDims dims = attention_dims(*attention);
      if (const std::string reason = kernels::attention_unsupported_reason(dims); !reason.empty())
        throw InputError(fmt::format("program: {}", describe_op(op)), reason);
      const double b = static_cast<double>(dims.batch);
      bytes.q = std::max(bytes.q, b * dims.seq_q * dims.heads * dims.qk_head_dim * 2.0);
      bytes.k = std::max(bytes.k, b * dims.seq_kv * dims.kv_heads * dims.qk_head_dim * 2.0);
      bytes.v = std::max(bytes.v, b * dims.seq_kv * dims.kv_heads * dims.v_head_dim * 2.0);
      bytes.o = std::max(bytes.o, b * dims.seq_q * dims.heads * dims.v_head_dim * 2.0);
      bytes.lse = std::max(bytes.lse, b * dims.heads * dims.seq_q * 4.0);
      if (attention->backward) {
        bytes.workspace =
            std::max(bytes.workspace,
                     static_cast<double>(kernels::attention_backward_workspace_bytes(dims)));
      }
    }
  }
  return bytes;
}

// Device memory freed only on success: after an abort the process ends, and freeing memory that
// aborted kernels may still touch could block.
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (pointer_ != nullptr && release_)
      cudaFree(pointer_);
  }
  void allocate(double bytes, const std::string& what) {
    if (bytes <= 0)
      return;
    size_ = aligned(bytes);
    check_cuda(cudaMalloc(&pointer_, size_), fmt::format("allocating {} ({} bytes)", what, size_));
  }
  template <typename T = void> T* get() const { return static_cast<T*>(pointer_); }
  std::size_t size() const { return size_; }
  void keep_on_exit() { release_ = false; }

private:
  void* pointer_ = nullptr;
  std::size_t size_ = 0;
  bool release_ = true;
};

struct RankRun {
  int rank = 0;
  int device = 0;
  IssueSchedule schedule;
  AttentionBytes attention_bytes;
  const StepProgram* program = nullptr;
  const ExecutorOptions* options = nullptr;

  // Set up by the rank's thread, read by the watchdog.
  std::mutex comms_mutex;
  std::vector<ncclComm_t> comms; // every communicator, world first
  std::atomic<bool> comms_aborted{false};
  std::vector<cudaEvent_t> op_end;
  std::atomic<std::int64_t> issued{0};          // ops of the current step issued so far
  std::atomic<std::int64_t> deadline_ns{0};     // 0: nothing in flight
  std::atomic<const char*> phase{"setting up"}; // what runs when no op does

  RankMeasurement measurement;
  std::vector<MoeCheckOutcome> checks;
  std::string device_name;
};

void add_comm(RankRun& run, ncclComm_t comm) {
  const std::lock_guard lock(run.comms_mutex);
  run.comms.push_back(comm);
}

void abort_comms(RankRun& run) {
  const std::lock_guard lock(run.comms_mutex);
  if (run.comms_aborted.exchange(true))
    return;
  for (ncclComm_t comm : run.comms)
    ncclCommAbort(comm);
}

void arm_deadline(RankRun& run, const char* phase) {
  run.phase = phase;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(run.options->timeout_s));
  run.deadline_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
}

// The first op of the current step whose end has not been reached: the op a hang or error is in.
std::string op_in_flight(RankRun& run) {
  const std::int64_t issued = run.issued.load();
  if (issued == 0 || run.op_end.empty())
    return run.phase.load();
  cudaSetDevice(run.device);
  for (std::int64_t index = 0; index < issued; ++index) {
    if (cudaEventQuery(run.op_end[static_cast<std::size_t>(index)]) == cudaErrorNotReady) {
      const Op& op = run.schedule.program->ops[static_cast<std::size_t>(index)];
      return fmt::format("{} ({})", describe_op(op), op_class(op));
    }
  }
  return fmt::format("after op {} (all issued ops finished)",
                     run.schedule.program->ops[static_cast<std::size_t>(issued - 1)].id);
}

// Polls every rank's communicators and deadline until `done`; on a failure records one line,
// aborts every communicator of the process and returns.
void watchdog(std::vector<std::unique_ptr<RankRun>>& runs, ProcessState& state,
              const std::atomic<bool>& done) {
  constexpr auto kPoll = std::chrono::milliseconds(20);
  while (!done && !state.failed) {
    std::this_thread::sleep_for(kPoll);
    for (auto& run : runs) {
      std::string reason;
      {
        const std::lock_guard lock(run->comms_mutex);
        for (ncclComm_t comm : run->comms) {
          ncclResult_t async = ncclSuccess;
          ncclCommGetAsyncError(comm, &async);
          if (async != ncclSuccess && async != ncclInProgress) {
            const char* last = ncclGetLastError(comm);
            reason = fmt::format("NCCL error: {}{}{}", ncclGetErrorString(async),
                                 *last != '\0' ? ": " : "", last);
            break;
          }
        }
      }
      const std::int64_t deadline = run->deadline_ns.load();
      if (reason.empty() && deadline != 0 &&
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
                  .count() > deadline) {
        reason = fmt::format("timed out after {:g} s (--timeout)", run->options->timeout_s);
      }
      if (reason.empty())
        continue;
      state.fail(fmt::format("rank {}: {}: {}", run->rank, op_in_flight(*run), reason));
      break;
    }
  }
  if (state.failed) {
    // Ranks that notice the failure stop touching their communicators; a grace period lets them,
    // and the abort then frees whatever still blocks (kernels waiting for a peer).
    std::this_thread::sleep_for(std::chrono::seconds(1));
    for (auto& run : runs)
      abort_comms(*run);
  }
}

// Waits for `stream` (or the whole device when null) while the watchdog watches.
void wait_for_work(RankRun& run, ProcessState& state, cudaStream_t stream) {
  while (true) {
    if (state.failed)
      throw ExecutionError("aborted");
    const cudaError_t status = stream != nullptr ? cudaStreamQuery(stream) : cudaSuccess;
    if (status == cudaSuccess)
      return;
    if (status != cudaErrorNotReady)
      check_cuda(status, fmt::format("rank {}: {}", run.rank, op_in_flight(run)));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

void wait_comm_ready(RankRun& run, ProcessState& state, ncclComm_t comm, const std::string& what) {
  while (true) {
    if (state.failed)
      throw ExecutionError("aborted");
    ncclResult_t async = ncclSuccess;
    check_nccl(ncclCommGetAsyncError(comm, &async), comm, what, &state);
    if (async == ncclSuccess)
      return;
    check_nccl(async, comm, fmt::format("rank {}: {}", run.rank, what), &state);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

ncclConfig_t comm_config(bool blocking) {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = blocking ? 1 : 0;
  return config;
}

// A split of `world` by the groups of one family: color the index of the group holding the rank.
ncclComm_t split_by_groups(RankRun& run, ProcessState& state, ncclComm_t world,
                           const std::vector<std::vector<std::int64_t>>& groups, bool blocking,
                           const std::string& name) {
  int color = NCCL_SPLIT_NOCOLOR;
  int key = 0;
  for (std::size_t index = 0; index < groups.size(); ++index) {
    const auto found = std::find(groups[index].begin(), groups[index].end(), run.rank);
    if (found != groups[index].end()) {
      color = static_cast<int>(index);
      key = static_cast<int>(found - groups[index].begin());
    }
  }
  ncclConfig_t config = comm_config(blocking);
  ncclComm_t comm = nullptr;
  const std::string what = fmt::format("rank {}: splitting the {} communicator", run.rank, name);
  check_nccl(ncclCommSplit(world, color, key, &comm, &config), world, what, &state);
  wait_comm_ready(run, state, world, what);
  if (comm != nullptr) {
    add_comm(run, comm);
    wait_comm_ready(run, state, comm, what);
  }
  return comm;
}

struct Buffers {
  DeviceBuffer gemm_a, gemm_b, gemm_c, gemm_c_fp32;
  DeviceBuffer memory_source, memory_destination;
  DeviceBuffer send, receive;
  DeviceBuffer q, k, v, o, lse, d_o, dq, dk, dv, workspace;

  std::vector<DeviceBuffer*> all() {
    return {&gemm_a,
            &gemm_b,
            &gemm_c,
            &gemm_c_fp32,
            &memory_source,
            &memory_destination,
            &send,
            &receive,
            &q,
            &k,
            &v,
            &o,
            &lse,
            &d_o,
            &dq,
            &dk,
            &dv,
            &workspace};
  }
};

class RankExecutor {
public:
  RankExecutor(RankRun& run, ProcessState& state) : run_(run), state_(state) {}

  void set_up(const ncclUniqueId& id, int world_size) {
    check_cuda(cudaSetDevice(run_.device), fmt::format("rank {}: selecting GPU", run_.rank));
    arm_deadline(run_, "creating the NCCL communicators");
    ncclConfig_t config = comm_config(false);
    const std::string what = fmt::format("rank {}: joining the NCCL world", run_.rank);
    nccl(ncclCommInitRankConfig(&world_, world_size, id, run_.rank, &config), nullptr, what);
    add_comm(run_, world_);
    wait_comm_ready(run_, state_, world_, what);
    // Every rank splits every family, in the program's order (ncclCommSplit is collective).
    for (const CommGroup& family : run_.program->groups)
      family_comms_.emplace_back(
          family.id, split_by_groups(run_, state_, world_, family.members, false, family.name));
    make_streams();
    allocate_buffers();
    run_.deadline_ns = 0;
  }

  void run_moe_checks() {
    for (const MoeLayerCheckRequest& request : run_.options->moe_checks) {
      arm_deadline(run_, "running the MoE layer check");
      // Blocking communicators: run_moe_layer is written for NCCL's default mode.
      ncclComm_t ep = split_by_groups(run_, state_, world_, request.ep_groups, true, "ep (check)");
      ncclComm_t etp =
          request.etp_groups.empty()
              ? nullptr
              : split_by_groups(run_, state_, world_, request.etp_groups, true, "etp (check)");
      // Assigned field by field: the spec gains fields (drop policy, reference size) whose
      // defaults are right here.
      MoeLayerSpec spec;
      spec.tokens = request.tokens;
      spec.hidden = request.hidden;
      spec.ffn_hidden = request.ffn_hidden;
      spec.experts = request.experts;
      spec.top_k = request.top_k;
      spec.gated = request.gated;
      spec.capacity_factor = request.capacity_factor;
      spec.pad_to_capacity = request.pad_to_capacity;
      spec.drop_by_position = request.drop_by_position;
      spec.routing_skew = request.routing_skew;
      spec.seed = 1;
      try {
        const MoeLayerResult result =
            run_moe_layer(spec, ep, etp, stream(Stream::compute), cublas(Stream::compute));
        for (const MoeLayerCheck& check : result.checks) {
          run_.checks.push_back({.layer = request.description,
                                 .rank = run_.rank,
                                 .name = check.name,
                                 .passed = check.passed,
                                 .detail = check.detail});
        }
      } catch (const std::exception& error) {
        if (state_.failed)
          throw;
        run_.checks.push_back({.layer = request.description,
                               .rank = run_.rank,
                               .name = "run_moe_layer",
                               .passed = false,
                               .detail = error.what()});
      }
      check_cuda(cudaDeviceSynchronize(), fmt::format("rank {}: MoE layer check", run_.rank));
    }
    run_.deadline_ns = 0;
  }

  void run_steps() {
    const IssueSchedule& schedule = run_.schedule;
    const std::size_t count = schedule.ops.size();
    op_start_.resize(count);
    run_.op_end.resize(count);
    for (std::size_t index = 0; index < count; ++index) {
      check_cuda(cudaEventCreate(&op_start_[index]), "creating events");
      check_cuda(cudaEventCreate(&run_.op_end[index]), "creating events");
    }
    check_cuda(cudaEventCreate(&step_begin_), "creating events");
    const int steps = run_.options->warmup_steps + run_.options->timed_steps;
    std::vector<std::vector<double>> op_samples(count);
    std::vector<double> step_samples;
    for (int step = 0; step < steps; ++step) {
      issue_step();
      if (step < run_.options->warmup_steps)
        continue;
      double step_s = 0;
      for (std::size_t index = 0; index < count; ++index) {
        float op_ms = 0, end_ms = 0;
        check_cuda(cudaEventElapsedTime(&op_ms, op_start_[index], run_.op_end[index]),
                   "reading op times");
        check_cuda(cudaEventElapsedTime(&end_ms, step_begin_, run_.op_end[index]),
                   "reading op times");
        op_samples[index].push_back(op_ms * 1e-3);
        step_s = std::max(step_s, end_ms * 1e-3);
      }
      step_samples.push_back(step_s);
    }
    run_.measurement.rank = run_.rank;
    run_.measurement.step_time_s = median(step_samples);
    for (std::vector<double>& samples : op_samples)
      run_.measurement.op_time_s.push_back(median(samples));
  }

  // Every rank's measurements to every rank, over the world communicator: op times padded to
  // the longest program, the step time in front.
  std::vector<RankMeasurement> gather(int world_size) {
    std::size_t longest = 0;
    for (const RankProgram& program : run_.program->programs)
      longest = std::max(longest, program.ops.size());
    const std::size_t row = longest + 1;
    std::vector<double> mine(row, 0.0);
    mine[0] = run_.measurement.step_time_s;
    std::copy(run_.measurement.op_time_s.begin(), run_.measurement.op_time_s.end(),
              mine.begin() + 1);
    DeviceBuffer send, receive;
    send.allocate(static_cast<double>(row * sizeof(double)), "gather");
    receive.allocate(static_cast<double>(row * sizeof(double) * world_size), "gather");
    arm_deadline(run_, "gathering the measurements");
    cudaStream_t stream = this->stream(Stream::compute);
    check_cuda(cudaMemcpyAsync(send.get(), mine.data(), row * sizeof(double),
                               cudaMemcpyHostToDevice, stream),
               "gather");
    nccl(ncclAllGather(send.get(), receive.get(), row, ncclFloat64, world_, stream), world_,
         fmt::format("rank {}: gathering the measurements", run_.rank));
    wait_for_work(run_, state_, stream);
    std::vector<double> all(row * static_cast<std::size_t>(world_size));
    check_cuda(
        cudaMemcpy(all.data(), receive.get(), all.size() * sizeof(double), cudaMemcpyDeviceToHost),
        "gather");
    run_.deadline_ns = 0;
    std::vector<RankMeasurement> ranks;
    for (int rank = 0; rank < world_size; ++rank) {
      const double* values = all.data() + static_cast<std::size_t>(rank) * row;
      const std::size_t ops = program_of_rank(*run_.program, rank)->ops.size();
      ranks.push_back({.rank = rank,
                       .step_time_s = values[0],
                       .op_time_s = std::vector<double>(values + 1, values + 1 + ops)});
    }
    return ranks;
  }

  void finish(bool success) {
    if (!success) {
      for (DeviceBuffer* buffer : buffers_.all())
        buffer->keep_on_exit();
      return;
    }
    cudaDeviceSynchronize();
    const std::lock_guard lock(run_.comms_mutex);
    for (ncclComm_t comm : run_.comms)
      ncclCommDestroy(comm);
    run_.comms.clear();
  }

private:
  void nccl(ncclResult_t status, ncclComm_t comm, const std::string& where) const {
    check_nccl(status, comm, where, &state_);
  }

  static double median(std::vector<double> samples) {
    if (samples.empty())
      return 0;
    std::sort(samples.begin(), samples.end());
    const std::size_t middle = samples.size() / 2;
    return samples.size() % 2 == 1 ? samples[middle]
                                   : 0.5 * (samples[middle - 1] + samples[middle]);
  }

  cudaStream_t stream(Stream which) {
    cudaStream_t& slot = streams_[stream_slot(which)];
    if (slot == nullptr)
      check_cuda(cudaStreamCreateWithFlags(&slot, cudaStreamNonBlocking), "creating a stream");
    return slot;
  }

  cublasHandle_t cublas(Stream which) {
    cublasHandle_t& slot = cublas_[stream_slot(which)];
    if (slot == nullptr) {
      check_cublas(cublasCreate(&slot), "creating a cuBLAS handle");
      check_cublas(cublasSetStream(slot, stream(which)), "binding a cuBLAS handle");
    }
    return slot;
  }

  void make_streams() {
    for (std::size_t slot = 0; slot < kStreamCount; ++slot) {
      if (run_.schedule.streams_used[slot])
        stream(static_cast<Stream>(slot));
    }
    stream(Stream::compute); // MoE checks and the gather run there
    for (const Op& op : run_.schedule.program->ops) {
      if (op.kind == OpKind::gemm)
        cublas(op.stream);
    }
  }

  void allocate_buffers() {
    const BufferBytes& bytes = run_.schedule.buffers;
    const AttentionBytes& attention = run_.attention_bytes;
    const double memory_bound = std::min(bytes.memory_bound / 2, kMemoryBoundBufferCap);
    const std::pair<DeviceBuffer*, double> plan[] = {
        {&buffers_.gemm_a, bytes.gemm_a},
        {&buffers_.gemm_b, bytes.gemm_b},
        {&buffers_.gemm_c, bytes.gemm_c},
        {&buffers_.gemm_c_fp32, bytes.gemm_c_fp32},
        {&buffers_.memory_source, memory_bound},
        {&buffers_.memory_destination, memory_bound},
        {&buffers_.send, bytes.communication},
        {&buffers_.receive, bytes.communication},
        {&buffers_.q, attention.q},
        {&buffers_.k, attention.k},
        {&buffers_.v, attention.v},
        {&buffers_.o, attention.o},
        {&buffers_.lse, attention.lse},
        {&buffers_.d_o, attention.o},
        {&buffers_.dq, attention.q},
        {&buffers_.dk, attention.k},
        {&buffers_.dv, attention.v},
        {&buffers_.workspace, attention.workspace},
    };
    cudaStream_t fill_stream = stream(Stream::compute);
    std::uint32_t seed = static_cast<std::uint32_t>(run_.rank) * 131u;
    for (const auto& [buffer, size] : plan) {
      buffer->allocate(size, fmt::format("rank {} synthetic buffers", run_.rank));
      if (buffer->get() != nullptr) {
        // Small values: GEMM sums and attention softmaxes stay finite, as real activations are.
        check_cuda(kernels::fill_bf16(buffer->get<__nv_bfloat16>(), buffer->size() / 2, ++seed,
                                      0.05f, fill_stream),
                   "filling synthetic buffers");
      }
    }
    check_cuda(cudaStreamSynchronize(fill_stream), "filling synthetic buffers");
  }

  void issue_step() {
    const IssueSchedule& schedule = run_.schedule;
    arm_deadline(run_, "starting the step");
    run_.issued = 0;
    cudaStream_t origin = stream(Stream::compute);
    check_cuda(cudaEventRecord(step_begin_, origin), "recording the step start");
    for (std::size_t slot = 0; slot < kStreamCount; ++slot) {
      if (streams_[slot] != nullptr && streams_[slot] != origin)
        check_cuda(cudaStreamWaitEvent(streams_[slot], step_begin_), "ordering streams");
    }
    for (const IssuedOp& issued : schedule.ops) {
      if (state_.failed)
        throw ExecutionError("aborted");
      const Op& op = schedule.program->ops[issued.index];
      cudaStream_t op_stream = stream(op.stream);
      const std::string where = fmt::format("rank {}: {}", run_.rank, describe_op(op));
      for (const std::size_t wait : issued.cross_waits)
        check_cuda(cudaStreamWaitEvent(op_stream, run_.op_end[wait]), where);
      check_cuda(cudaEventRecord(op_start_[issued.index], op_stream), where);
      launch(op, issued, op_stream, where);
      check_cuda(cudaEventRecord(run_.op_end[issued.index], op_stream), where);
      ++run_.issued;
    }
    for (cudaStream_t each : streams_) {
      if (each != nullptr)
        wait_for_work(run_, state_, each);
    }
    run_.deadline_ns = 0;
  }

  void launch(const Op& op, const IssuedOp& issued, cudaStream_t op_stream,
              const std::string& where) {
    std::visit([&](const auto& shape) { launch_shape(op, shape, issued, op_stream, where); },
               op.shape);
  }

  void launch_shape(const Op& op, const GemmShape& gemm, const IssuedOp&, cudaStream_t,
                    const std::string& where) {
    // Row-major C[m×n] = A[m×k]·B[k×n] is column-major Cᵀ = Bᵀ·Aᵀ: cuBLAS gets (n, m, k).
    const float alpha = 1.0f;
    const float beta = gemm.accumulate_fp32 ? 1.0f : 0.0f;
    const auto m = static_cast<int>(gemm.m), n = static_cast<int>(gemm.n),
               k = static_cast<int>(gemm.k);
    void* c = gemm.accumulate_fp32 ? buffers_.gemm_c_fp32.get() : buffers_.gemm_c.get();
    check_cublas(cublasGemmStridedBatchedEx(
                     cublas(op.stream), CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &alpha,
                     buffers_.gemm_b.get(), CUDA_R_16BF, n, static_cast<long long>(k) * n,
                     buffers_.gemm_a.get(), CUDA_R_16BF, k, static_cast<long long>(m) * k, &beta, c,
                     gemm.accumulate_fp32 ? CUDA_R_32F : CUDA_R_16BF, n,
                     static_cast<long long>(m) * n, static_cast<int>(gemm.groups),
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 where);
  }

  void launch_shape(const Op&, const AttentionOpShape& shape, const IssuedOp&,
                    cudaStream_t op_stream, const std::string& where) {
    const kernels::AttentionDims dims = attention_dims(shape);
    const float scale = 1.0f / std::sqrt(static_cast<float>(dims.qk_head_dim));
    const auto* q = buffers_.q.get<const __nv_bfloat16>();
    const auto* k = buffers_.k.get<const __nv_bfloat16>();
    const auto* v = buffers_.v.get<const __nv_bfloat16>();
    cudaError_t status = cudaSuccess;
    if (!shape.backward) {
      status = kernels::attention_forward(dims, scale, q, k, v, buffers_.o.get<__nv_bfloat16>(),
                                          buffers_.lse.get<float>(), op_stream);
    } else {
      status = kernels::attention_backward(
          dims, scale, q, k, v, buffers_.o.get<const __nv_bfloat16>(),
          buffers_.d_o.get<const __nv_bfloat16>(), buffers_.lse.get<const float>(),
          buffers_.dq.get<__nv_bfloat16>(), buffers_.dk.get<__nv_bfloat16>(),
          buffers_.dv.get<__nv_bfloat16>(), buffers_.workspace.get(), op_stream);
    }
    check_cuda(status, where);
  }

  void launch_shape(const Op&, const MemoryBoundShape& shape, const IssuedOp&,
                    cudaStream_t op_stream, const std::string& where) {
    check_cuda(
        kernels::stream_bytes(buffers_.memory_source.get(), buffers_.memory_destination.get(),
                              buffers_.memory_source.size(), shape.bytes, shape.kernels, op_stream),
        where);
  }

  ncclComm_t family_comm(int group_id) const {
    for (const auto& [id, comm] : family_comms_) {
      if (id == group_id)
        return comm;
    }
    return nullptr;
  }

  void launch_shape(const Op&, const CollectiveShape& shape, const IssuedOp& issued,
                    cudaStream_t op_stream, const std::string& where) {
    ncclComm_t comm = family_comm(shape.group_id);
    int size = 1;
    nccl(ncclCommCount(comm, &size), comm, where);
    auto* send = buffers_.send.get<char>();
    auto* receive = buffers_.receive.get<char>();
    const std::size_t elements = byte_count(shape.bytes) / 2;
    switch (shape.op) {
    case CollectiveOp::all_reduce:
      nccl(ncclAllReduce(send, receive, elements, ncclBfloat16, ncclSum, comm, op_stream), comm,
           where);
      return;
    case CollectiveOp::all_gather:
      nccl(ncclAllGather(send, receive, elements / static_cast<std::size_t>(size), ncclBfloat16,
                         comm, op_stream),
           comm, where);
      return;
    case CollectiveOp::reduce_scatter:
      nccl(ncclReduceScatter(send, receive, elements / static_cast<std::size_t>(size), ncclBfloat16,
                             ncclSum, comm, op_stream),
           comm, where);
      return;
    case CollectiveOp::all_to_all:
    case CollectiveOp::all_to_all_v: {
      std::vector<double> sends(static_cast<std::size_t>(size), shape.bytes / size);
      std::vector<double> receives = sends;
      if (shape.op == CollectiveOp::all_to_all_v) {
        sends = shape.send_bytes_per_peer;
        receives = issued.recv_bytes_per_peer;
      }
      // Grouped sends and receives, one per peer, as Megatron's all_to_all_single with splits.
      nccl(ncclGroupStart(), comm, where);
      std::size_t send_offset = 0, receive_offset = 0;
      for (int peer = 0; peer < size; ++peer) {
        const std::size_t out = byte_count(sends[static_cast<std::size_t>(peer)]);
        const std::size_t in = byte_count(receives[static_cast<std::size_t>(peer)]);
        nccl(ncclSend(send + send_offset, out, ncclUint8, peer, comm, op_stream), comm, where);
        nccl(ncclRecv(receive + receive_offset, in, ncclUint8, peer, comm, op_stream), comm, where);
        send_offset += out;
        receive_offset += in;
      }
      nccl(ncclGroupEnd(), comm, where);
      return;
    }
    }
  }

  void launch_shape(const Op& op, const PeerTransfer& transfer, const IssuedOp&,
                    cudaStream_t op_stream, const std::string& where) {
    ncclComm_t comm = family_comm(transfer.group_id);
    const auto peer = static_cast<int>(transfer.peer_index);
    const std::size_t bytes = byte_count(transfer.bytes);
    if (op.kind == OpKind::send) {
      nccl(ncclSend(buffers_.send.get(), bytes, ncclUint8, peer, comm, op_stream), comm, where);
    } else {
      nccl(ncclRecv(buffers_.receive.get(), bytes, ncclUint8, peer, comm, op_stream), comm, where);
    }
  }

  RankRun& run_;
  ProcessState& state_;
  ncclComm_t world_ = nullptr;
  std::vector<std::pair<int, ncclComm_t>> family_comms_;
  std::array<cudaStream_t, kStreamCount> streams_{};
  std::array<cublasHandle_t, kStreamCount> cublas_{};
  Buffers buffers_;
  std::vector<cudaEvent_t> op_start_;
  cudaEvent_t step_begin_ = nullptr;
};

std::string device_name(int device) {
  cudaDeviceProp properties{};
  if (cudaGetDeviceProperties(&properties, device) != cudaSuccess)
    return "unknown GPU";
  return properties.name;
}

ncclUniqueId world_unique_id(const LocalLaunch& launch, const ExecutorOptions& options,
                             const EnvironmentReader& environment) {
  ncclUniqueId id{};
  if (launch.first_rank == 0)
    check_nccl(ncclGetUniqueId(&id), nullptr, "rank 0: making the NCCL unique id");
  if (!launch.launcher)
    return id;
  const std::string payload(reinterpret_cast<const char*>(&id), sizeof id);
  const std::string received =
      rendezvous_broadcast(rendezvous_address_from_environment(environment), launch.first_rank,
                           launch.world_size, payload, options.timeout_s);
  if (received.size() != sizeof id)
    throw ExecutionError(fmt::format("rank {}: the rendezvous sent {} bytes, not an NCCL id",
                                     launch.first_rank, received.size()));
  std::memcpy(&id, received.data(), sizeof id);
  return id;
}

void run_rank(RankRun& run, ProcessState& state, const ncclUniqueId& id, int world_size,
              bool gather_here, std::vector<RankMeasurement>& gathered) {
  RankExecutor executor(run, state);
  try {
    executor.set_up(id, world_size);
    executor.run_moe_checks();
    run.phase = "running the step";
    executor.run_steps();
    std::vector<RankMeasurement> all = executor.gather(world_size);
    if (gather_here)
      gathered = std::move(all);
    executor.finish(true);
  } catch (const std::exception& error) {
    // The first failure names the rank and op; "aborted" only follows another rank's failure.
    if (std::string(error.what()) != "aborted")
      state.fail(error.what());
    executor.finish(false);
  }
}

} // namespace

bool runtime_has_gpu_support() {
  return true;
}

void require_gpu_runtime() {}

ExecutionResult execute_step_program(const StepProgram& program, const ExecutorOptions& options) {
  const EnvironmentReader environment =
      options.environment ? options.environment
                          : EnvironmentReader([](const char* name) { return std::getenv(name); });
  const LocalLaunch launch = resolve_local_launch(program.world_size, options.local_gpus,
                                                  launch_rank_from_environment(environment));

  std::vector<std::unique_ptr<RankRun>> runs;
  for (int local = 0; local < launch.local_ranks; ++local) {
    auto run = std::make_unique<RankRun>();
    run->rank = launch.first_rank + local;
    run->device = launch.first_device + local;
    run->program = &program;
    run->options = &options;
    run->schedule = make_issue_schedule(program, run->rank);
    run->attention_bytes = check_ops_and_size_attention(*run->schedule.program);
    runs.push_back(std::move(run));
  }

  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess)
    devices = 0;
  const int needed = launch.first_device + launch.local_ranks;
  if (devices < needed) {
    throw InputError("--local-gpus",
                     fmt::format("{} GPU(s) needed but {} visible", needed, devices));
  }
  for (auto& run : runs) {
    check_cuda(cudaSetDevice(run->device), fmt::format("rank {}: selecting GPU", run->rank));
    std::size_t free_bytes = 0, total_bytes = 0;
    check_cuda(cudaMemGetInfo(&free_bytes, &total_bytes),
               fmt::format("rank {}: reading free memory", run->rank));
    run->device_name = device_name(run->device);
    if (options.predicted_peak_bytes > 0) {
      check_memory_fits(options.predicted_peak_bytes, static_cast<double>(free_bytes),
                        static_cast<double>(total_bytes), run->device, run->device_name);
    }
  }

  const ncclUniqueId id = world_unique_id(launch, options, environment);
  ProcessState state;
  std::atomic<bool> done{false};
  std::vector<RankMeasurement> gathered;
  std::thread guard([&] { watchdog(runs, state, done); });
  std::vector<std::thread> threads;
  for (auto& run : runs) {
    const bool gather_here = run->rank == 0;
    threads.emplace_back([&, gather_here, raw = run.get()] {
      run_rank(*raw, state, id, launch.world_size, gather_here, gathered);
    });
  }
  for (std::thread& thread : threads)
    thread.join();
  done = true;
  guard.join();
  if (state.failed) {
    for (auto& run : runs)
      abort_comms(*run);
    throw ExecutionError(state.failure);
  }

  ExecutionResult result{.reporting = launch.first_rank == 0,
                         .device = runs.front()->device_name,
                         .ranks = std::move(gathered)};
  for (auto& run : runs)
    result.moe_checks.insert(result.moe_checks.end(), run->checks.begin(), run->checks.end());
  return result;
}

} // namespace foldplan::runtime
