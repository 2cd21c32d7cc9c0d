// The timing behind `foldplan calibrate`: cuBLAS GEMMs with the executor's exact call, foldplan's
// attention kernels, a device copy and the streaming kernel, NCCL collectives (one thread per
// GPU), and the SM clock through NVML. Device times from CUDA events, median of kTimed
// iterations after warm-up, random data.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "kernels/attention.hpp"
#include "kernels/stream_bytes.hpp"
#include "runtime/calibration_sweep.hpp"
#include "runtime/cuda_status_gpu.hpp"
#include "runtime/executor.hpp"

namespace foldplan::runtime {
namespace {

constexpr int kWarmup = 3;
constexpr int kTimed = 25;
// Input sets rotated so that a small GEMM's operands come from HBM, not from the L2 (as
// tools/measure/microbench.py): the sets together span at least this many L2s.
constexpr double kL2Multiple = 3;
// A graph replay of a small GEMM repeats it until it runs at least this long, so that the events
// around it measure the kernels, not the replay's launch.
constexpr double kMinReplay_s = 50e-6;
constexpr int kMaxRepeats = 512;
constexpr std::size_t kCublasWorkspaceBytes = 32u << 20; // cuBLAS's Hopper default
constexpr double kMemoryBytes = 1024.0 * 1024 * 1024;
constexpr double kLoadClockSeconds = 2.0;
constexpr std::int64_t kLoadGemm = 8192;

void check_nccl(ncclResult_t status, const std::string& what) {
  if (status != ncclSuccess)
    throw ExecutionError(fmt::format("{}: NCCL error: {}", what, ncclGetErrorString(status)));
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

class DeviceMemory {
public:
  DeviceMemory() = default;
  DeviceMemory(std::size_t bytes, const std::string& what) : bytes_(bytes) {
    check_cuda(cudaMalloc(&pointer_, bytes), fmt::format("allocating {} ({} bytes)", what, bytes));
  }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  DeviceMemory& operator=(DeviceMemory&& other) noexcept {
    std::swap(pointer_, other.pointer_);
    std::swap(bytes_, other.bytes_);
    return *this;
  }
  ~DeviceMemory() {
    if (pointer_ != nullptr)
      cudaFree(pointer_);
  }
  template <typename T = void> T* get() const { return static_cast<T*>(pointer_); }
  std::size_t bytes() const { return bytes_; }

private:
  void* pointer_ = nullptr;
  std::size_t bytes_ = 0;
};

class Event {
public:
  Event() { check_cuda(cudaEventCreate(&event_), "creating a CUDA event"); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() { cudaEventDestroy(event_); }
  cudaEvent_t get() const { return event_; }

private:
  cudaEvent_t event_ = nullptr;
};

// Median device time of `launch` (enqueued on `stream`) over kTimed iterations after kWarmup.
template <typename Launch>
double time_on_stream(cudaStream_t stream, const std::string& what, Launch launch) {
  for (int i = 0; i < kWarmup; ++i)
    launch();
  std::vector<Event> starts(kTimed), ends(kTimed);
  for (int i = 0; i < kTimed; ++i) {
    check_cuda(cudaEventRecord(starts[i].get(), stream), what);
    launch();
    check_cuda(cudaEventRecord(ends[i].get(), stream), what);
  }
  check_cuda(cudaStreamSynchronize(stream), what);
  std::vector<double> times;
  for (int i = 0; i < kTimed; ++i) {
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, starts[i].get(), ends[i].get()), what);
    times.push_back(ms * 1e-3);
  }
  return median(std::move(times));
}

// NVML, loaded at run time: the CUDA toolkit here ships neither its header nor its stub, and the
// driver's libnvidia-ml is on every machine with an NVIDIA driver. Only the few stable C entry
// points needed to read the SM clock and the driver version.
class Nvml {
public:
  explicit Nvml(int cuda_device) {
    library_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (library_ == nullptr)
      return;
    using Init = int (*)();
    using ByBusId = int (*)(const char*, void**);
    const auto init = reinterpret_cast<Init>(dlsym(library_, "nvmlInit_v2"));
    const auto by_bus =
        reinterpret_cast<ByBusId>(dlsym(library_, "nvmlDeviceGetHandleByPciBusId_v2"));
    clock_ = reinterpret_cast<ClockInfo>(dlsym(library_, "nvmlDeviceGetClockInfo"));
    max_clock_ = reinterpret_cast<ClockInfo>(dlsym(library_, "nvmlDeviceGetMaxClockInfo"));
    driver_ = reinterpret_cast<DriverVersion>(dlsym(library_, "nvmlSystemGetDriverVersion"));
    std::array<char, 64> bus_id{};
    if (init == nullptr || by_bus == nullptr || clock_ == nullptr || init() != 0 ||
        cudaDeviceGetPCIBusId(bus_id.data(), static_cast<int>(bus_id.size()), cuda_device) !=
            cudaSuccess ||
        by_bus(bus_id.data(), &device_) != 0) {
      device_ = nullptr;
    }
  }
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;
  ~Nvml() {
    if (library_ != nullptr) {
      if (const auto shutdown = reinterpret_cast<int (*)()>(dlsym(library_, "nvmlShutdown")))
        shutdown();
      dlclose(library_);
    }
  }
  // MHz, 0 when NVML could not be read.
  double sm_mhz() const { return read(clock_); }
  double max_sm_mhz() const { return read(max_clock_); }
  std::string driver_version() const {
    std::array<char, 96> text{};
    if (device_ == nullptr || driver_ == nullptr ||
        driver_(text.data(), static_cast<unsigned>(text.size())) != 0)
      return "unknown";
    return text.data();
  }

private:
  using ClockInfo = int (*)(void*, int, unsigned*);
  using DriverVersion = int (*)(char*, unsigned);
  static constexpr int kSmClock = 1; // NVML_CLOCK_SM
  double read(ClockInfo function) const {
    unsigned mhz = 0;
    if (device_ == nullptr || function == nullptr || function(device_, kSmClock, &mhz) != 0)
      return 0;
    return mhz;
  }
  void* library_ = nullptr;
  void* device_ = nullptr;
  ClockInfo clock_ = nullptr, max_clock_ = nullptr;
  DriverVersion driver_ = nullptr;
};

std::string version_text(int version, int major_divisor, int minor_divisor) {
  return fmt::format("{}.{}.{}", version / major_divisor, version % major_divisor / minor_divisor,
                     version % minor_divisor);
}

double as_double(std::int64_t value) {
  return static_cast<double>(value);
}

// The executor's GEMM (runtime/executor_gpu.cpp launch_shape): row-major C[m×n] = A[m×k]·B[k×n]
// as column-major Cᵀ = Bᵀ·Aᵀ, one group; fp32 C with beta 1 when accumulating.
void gemm(cublasHandle_t handle, const CalibrationGemmShape& shape, const void* a, const void* b,
          void* c, bool accumulate) {
  const float alpha = 1.0f;
  const float beta = accumulate ? 1.0f : 0.0f;
  const auto m = static_cast<int>(shape.m), n = static_cast<int>(shape.n),
             k = static_cast<int>(shape.k);
  check_cublas(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &alpha, b, CUDA_R_16BF, n, a,
                            CUDA_R_16BF, k, &beta, c, accumulate ? CUDA_R_32F : CUDA_R_16BF, n,
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               fmt::format("GEMM {}x{}x{}", shape.m, shape.n, shape.k));
}

class GemmBench {
public:
  GemmBench(const std::vector<CalibrationGemmShape>& shapes, cudaStream_t stream,
            std::size_t l2_bytes)
      : stream_(stream), l2_bytes_(static_cast<double>(l2_bytes)) {
    // The load-clock GEMM (8192³) runs on these buffers too.
    double operands = operand_bytes({kLoadGemm, kLoadGemm, kLoadGemm});
    double outputs = as_double(kLoadGemm) * as_double(kLoadGemm) * 2;
    for (const CalibrationGemmShape& shape : shapes) {
      operands = std::max(operands, operand_bytes(shape));
      outputs = std::max(outputs, as_double(shape.m) * as_double(shape.n) * 4);
    }
    operands = std::max(operands, (kL2Multiple + 1) * l2_bytes_);
    outputs = std::max(outputs, (kL2Multiple + 1) * l2_bytes_);
    operands_ = DeviceMemory(static_cast<std::size_t>(operands), "GEMM operands");
    outputs_ = DeviceMemory(static_cast<std::size_t>(outputs), "GEMM outputs");
    check_cuda(kernels::fill_bf16(operands_.get<__nv_bfloat16>(), operands_.bytes() / 2, 17, 1.0f,
                                  stream_),
               "filling GEMM operands");
    check_cuda(cudaMemsetAsync(outputs_.get(), 0, outputs_.bytes(), stream_), "zeroing outputs");
    workspace_ = DeviceMemory(kCublasWorkspaceBytes, "cuBLAS workspace");
    check_cublas(cublasCreate(&handle_), "creating a cuBLAS handle");
    check_cublas(cublasSetStream(handle_, stream_), "binding a cuBLAS handle");
    // After cublasSetStream, which resets it: graph capture must not allocate one.
    check_cublas(cublasSetWorkspace(handle_, workspace_.get(), workspace_.bytes()),
                 "setting the cuBLAS workspace");
  }
  GemmBench(const GemmBench&) = delete;
  GemmBench& operator=(const GemmBench&) = delete;
  ~GemmBench() { cublasDestroy(handle_); }

  cublasHandle_t handle() const { return handle_; }

  // Median time of one GEMM: CUDA-graph replays of `repeats` GEMMs rotating over input sets.
  double time_s(const CalibrationGemmShape& shape, bool accumulate) {
    const double ab = operand_bytes(shape);
    const double c = as_double(shape.m) * as_double(shape.n) * (accumulate ? 4 : 2);
    const double wanted = std::ceil(kL2Multiple * l2_bytes_ / (ab + c));
    const int sets = static_cast<int>(std::clamp(
        std::min({wanted, std::floor(as_double(static_cast<std::int64_t>(operands_.bytes())) / ab),
                  std::floor(as_double(static_cast<std::int64_t>(outputs_.bytes())) / c)}),
        1.0, 4096.0));
    // A lower bound on one GEMM's time (1 PFLOP/s, 4 TB/s) sizes the replay.
    const double flops = 2.0 * as_double(shape.m) * as_double(shape.n) * as_double(shape.k);
    const double floor_s = std::max(flops / 1e15, (ab + c) / 4e12);
    const int repeats = std::clamp(
        std::max(sets, static_cast<int>(std::ceil(kMinReplay_s / floor_s))), 1, kMaxRepeats);
    const auto operand = [&](int set) {
      return operands_.get<char>() + static_cast<std::size_t>(set) * static_cast<std::size_t>(ab);
    };
    const auto output = [&](int set) {
      return outputs_.get<char>() + static_cast<std::size_t>(set) * static_cast<std::size_t>(c);
    };
    const std::size_t a_bytes = static_cast<std::size_t>(shape.m * shape.k * 2);
    // Heuristics and kernel loading before the capture.
    gemm(handle_, shape, operand(0), operand(0) + a_bytes, output(0), accumulate);
    cudaGraph_t graph = nullptr;
    const std::string what = fmt::format("capturing GEMM {}x{}x{}", shape.m, shape.n, shape.k);
    check_cuda(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), what);
    for (int i = 0; i < repeats; ++i) {
      const int set = i % sets;
      gemm(handle_, shape, operand(set), operand(set) + a_bytes, output(set), accumulate);
    }
    check_cuda(cudaStreamEndCapture(stream_, &graph), what);
    cudaGraphExec_t exec = nullptr;
    check_cuda(cudaGraphInstantiate(&exec, graph, 0), what);
    cudaGraphDestroy(graph);
    const double replay_s = time_on_stream(
        stream_, what, [&] { check_cuda(cudaGraphLaunch(exec, stream_), "replaying a GEMM"); });
    cudaGraphExecDestroy(exec);
    return replay_s / repeats;
  }

  // One GEMM of each output kind on fresh random inputs against a float64 product on the host
  // (a few rows): the timed call computes what the runtime's does.
  void check(bool accumulate) {
    const CalibrationGemmShape shape{64, 1024, 512};
    const std::size_t a_count = 64 * 512, b_count = 512 * 1024, c_count = 64 * 1024;
    auto* a = operands_.get<__nv_bfloat16>();
    auto* b = a + a_count;
    check_cuda(kernels::fill_bf16(a, a_count + b_count, accumulate ? 5 : 3, 1.0f, stream_),
               "filling the GEMM check's inputs");
    std::vector<float> before(c_count, 0.0f);
    if (accumulate) {
      for (std::size_t i = 0; i < c_count; ++i)
        before[i] = static_cast<float>(i % 7) - 3.0f;
      check_cuda(cudaMemcpyAsync(outputs_.get(), before.data(), c_count * 4, cudaMemcpyHostToDevice,
                                 stream_),
                 "GEMM check");
    }
    gemm(handle_, shape, a, b, outputs_.get(), accumulate);
    std::vector<__nv_bfloat16> host_a(a_count), host_b(b_count), host_c16(c_count);
    std::vector<float> host_c32(c_count);
    check_cuda(cudaMemcpyAsync(host_a.data(), a, a_count * 2, cudaMemcpyDeviceToHost, stream_),
               "GEMM check");
    check_cuda(cudaMemcpyAsync(host_b.data(), b, b_count * 2, cudaMemcpyDeviceToHost, stream_),
               "GEMM check");
    check_cuda(accumulate ? cudaMemcpyAsync(host_c32.data(), outputs_.get(), c_count * 4,
                                            cudaMemcpyDeviceToHost, stream_)
                          : cudaMemcpyAsync(host_c16.data(), outputs_.get(), c_count * 2,
                                            cudaMemcpyDeviceToHost, stream_),
               "GEMM check");
    check_cuda(cudaStreamSynchronize(stream_), "GEMM check");
    double error = 0, norm = 0;
    for (std::size_t row = 0; row < 64; row += 9) {
      for (std::size_t column = 0; column < 1024; ++column) {
        double reference = before[row * 1024 + column];
        for (std::size_t i = 0; i < 512; ++i) {
          reference += static_cast<double>(__bfloat162float(host_a[row * 512 + i])) *
                       static_cast<double>(__bfloat162float(host_b[i * 1024 + column]));
        }
        const double got = accumulate ? host_c32[row * 1024 + column]
                                      : __bfloat162float(host_c16[row * 1024 + column]);
        error += (got - reference) * (got - reference);
        norm += reference * reference;
      }
    }
    const double relative = std::sqrt(error / norm);
    if (!(relative < 1e-2)) {
      throw ExecutionError(fmt::format("the {} GEMM check failed: relative error {:.3g} against "
                                       "float64",
                                       accumulate ? "fp32-accumulate" : "bf16", relative));
    }
    check_cuda(kernels::fill_bf16(a, a_count + b_count, 17, 1.0f, stream_), "refilling operands");
  }

  // The SM clock under a training-like load: 8192³ GEMMs back to back for ~2 s, NVML read every
  // few milliseconds, the median.
  double load_clock_mhz(const Nvml& nvml) {
    if (nvml.sm_mhz() <= 0)
      return 0;
    const CalibrationGemmShape shape{kLoadGemm, kLoadGemm, kLoadGemm};
    const std::size_t a_bytes = static_cast<std::size_t>(kLoadGemm * kLoadGemm * 2);
    const void* a = operands_.get();
    const void* b = operands_.get<char>() + a_bytes;
    std::vector<double> readings;
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start <
           std::chrono::duration<double>(kLoadClockSeconds)) {
      for (int i = 0; i < 4; ++i)
        gemm(handle_, shape, a, b, outputs_.get(), false);
      // Keep the queue short so that the readings are taken while GEMMs run.
      check_cuda(cudaStreamSynchronize(stream_), "the load-clock GEMMs");
      readings.push_back(nvml.sm_mhz());
    }
    return median(std::move(readings));
  }

private:
  static double operand_bytes(const CalibrationGemmShape& shape) {
    return 2.0 *
           (as_double(shape.m) * as_double(shape.k) + as_double(shape.k) * as_double(shape.n));
  }

  cudaStream_t stream_;
  double l2_bytes_;
  DeviceMemory operands_, outputs_, workspace_;
  cublasHandle_t handle_ = nullptr;
};

std::vector<TimedAttention> time_attention(const std::vector<CalibrationAttentionShape>& shapes,
                                           cudaStream_t stream, const Nvml& nvml,
                                           const CalibrationOptions& options) {
  std::size_t q = 0, kv = 0, lse = 0, workspace = 0;
  for (const CalibrationAttentionShape& shape : shapes) {
    q = std::max(q, static_cast<std::size_t>(shape.seq * shape.heads * shape.head_dim));
    kv = std::max(kv, static_cast<std::size_t>(shape.seq * shape.kv_heads * shape.head_dim));
    lse = std::max(lse, static_cast<std::size_t>(shape.heads * shape.seq));
    const kernels::AttentionDims dims = attention_dims_of(shape);
    workspace = std::max(workspace, kernels::attention_backward_workspace_bytes(dims));
  }
  if (shapes.empty())
    return {};
  DeviceMemory mq(q * 2, "q"), mk(kv * 2, "k"), mv(kv * 2, "v"), mo(q * 2, "o"), mdo(q * 2, "dO"),
      mdq(q * 2, "dq"), mdk(kv * 2, "dk"), mdv(kv * 2, "dv"), mlse(lse * 4, "lse"),
      mworkspace(std::max<std::size_t>(workspace, 256), "workspace");
  std::uint32_t seed = 41;
  for (const DeviceMemory* buffer : {&mq, &mk, &mv, &mdo}) {
    check_cuda(
        kernels::fill_bf16(buffer->get<__nv_bfloat16>(), buffer->bytes() / 2, seed++, 1.0f, stream),
        "filling attention inputs");
  }
  std::vector<TimedAttention> timed;
  for (const CalibrationAttentionShape& shape : shapes) {
    if (options.progress) {
      options.progress(fmt::format("attention {}/{}: heads {} kv {} seq {} d {}{}",
                                   timed.size() + 1, shapes.size(), shape.heads, shape.kv_heads,
                                   shape.seq, shape.head_dim, shape.causal ? "" : " not causal"));
    }
    const kernels::AttentionDims dims = attention_dims_of(shape);
    const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
    const std::string what = fmt::format("attention seq {} heads {}", shape.seq, shape.heads);
    TimedAttention point{.shape = shape};
    point.forward_s = time_on_stream(stream, what, [&] {
      check_cuda(kernels::attention_forward(dims, scale, mq.get<__nv_bfloat16>(),
                                            mk.get<__nv_bfloat16>(), mv.get<__nv_bfloat16>(),
                                            mo.get<__nv_bfloat16>(), mlse.get<float>(), stream),
                 what);
    });
    point.forward_sm_mhz = nvml.sm_mhz();
    point.backward_s = time_on_stream(stream, what, [&] {
      check_cuda(kernels::attention_backward(
                     dims, scale, mq.get<__nv_bfloat16>(), mk.get<__nv_bfloat16>(),
                     mv.get<__nv_bfloat16>(), mo.get<__nv_bfloat16>(), mdo.get<__nv_bfloat16>(),
                     mlse.get<float>(), mdq.get<__nv_bfloat16>(), mdk.get<__nv_bfloat16>(),
                     mdv.get<__nv_bfloat16>(), mworkspace.get(), stream),
                 what);
    });
    point.backward_sm_mhz = nvml.sm_mhz();
    timed.push_back(point);
  }
  return timed;
}

void time_memory(CalibrationRun& run, cudaStream_t stream) {
  const auto bytes = static_cast<std::size_t>(kMemoryBytes);
  DeviceMemory source(bytes, "copy source"), destination(bytes, "copy destination");
  check_cuda(kernels::fill_bf16(source.get<__nv_bfloat16>(), bytes / 2, 7, 1.0f, stream),
             "filling the copy source");
  const double copy_s = time_on_stream(stream, "device copy", [&] {
    check_cuda(
        cudaMemcpyAsync(destination.get(), source.get(), bytes, cudaMemcpyDeviceToDevice, stream),
        "device copy");
  });
  run.copy_Bps = 2 * kMemoryBytes / copy_s;
  const double stream_s = time_on_stream(stream, "streaming kernel", [&] {
    check_cuda(
        kernels::stream_bytes(source.get(), destination.get(), bytes, 2 * kMemoryBytes, 1, stream),
        "streaming kernel");
  });
  run.stream_Bps = 2 * kMemoryBytes / stream_s;
}

// ---- NCCL: one thread per GPU, communicators from ncclCommInitAll ----

const std::array<const char*, 6> kCollectiveKinds = {"all_reduce",     "all_gather",
                                                     "reduce_scatter", "all_to_all",
                                                     "send_recv",      "send_recv_bidirectional"};

struct RankContext {
  int rank = 0, size = 0;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  char* send = nullptr;
  char* receive = nullptr;
};

// One collective of `bytes` as nccl-tests counts them (all_reduce buffer, all_gather output,
// reduce_scatter input, all_to_all send buffer, send_recv buffer).
void launch_collective(const std::string& kind, double bytes, const RankContext& rank) {
  const auto elements = static_cast<std::size_t>(bytes / 2);
  const auto size = static_cast<std::size_t>(rank.size);
  const std::string what = fmt::format("{} of {} bytes on rank {}", kind, bytes, rank.rank);
  if (kind == "all_reduce") {
    check_nccl(ncclAllReduce(rank.send, rank.receive, elements, ncclBfloat16, ncclSum, rank.comm,
                             rank.stream),
               what);
  } else if (kind == "all_gather") {
    check_nccl(ncclAllGather(rank.send, rank.receive, elements / size, ncclBfloat16, rank.comm,
                             rank.stream),
               what);
  } else if (kind == "reduce_scatter") {
    check_nccl(ncclReduceScatter(rank.send, rank.receive, elements / size, ncclBfloat16, ncclSum,
                                 rank.comm, rank.stream),
               what);
  } else if (kind == "all_to_all") {
    const std::size_t chunk = elements / size;
    check_nccl(ncclGroupStart(), what);
    for (std::size_t peer = 0; peer < size; ++peer) {
      check_nccl(ncclSend(rank.send + peer * chunk * 2, chunk, ncclBfloat16, static_cast<int>(peer),
                          rank.comm, rank.stream),
                 what);
      check_nccl(ncclRecv(rank.receive + peer * chunk * 2, chunk, ncclBfloat16,
                          static_cast<int>(peer), rank.comm, rank.stream),
                 what);
    }
    check_nccl(ncclGroupEnd(), what);
  } else if (kind == "send_recv") {
    // One direction, rank 0 to rank 1; the other ranks stay out.
    if (rank.rank == 0)
      check_nccl(ncclSend(rank.send, elements, ncclBfloat16, 1, rank.comm, rank.stream), what);
    else if (rank.rank == 1)
      check_nccl(ncclRecv(rank.receive, elements, ncclBfloat16, 0, rank.comm, rank.stream), what);
  } else {
    // Every rank sends to the next and receives from the previous at once.
    check_nccl(ncclGroupStart(), what);
    check_nccl(ncclSend(rank.send, elements, ncclBfloat16, (rank.rank + 1) % rank.size, rank.comm,
                        rank.stream),
               what);
    check_nccl(ncclRecv(rank.receive, elements, ncclBfloat16,
                        (rank.rank + rank.size - 1) % rank.size, rank.comm, rank.stream),
               what);
    check_nccl(ncclGroupEnd(), what);
  }
}

std::vector<__nv_bfloat16> constant(std::size_t count, float value) {
  return std::vector<__nv_bfloat16>(count, __float2bfloat16(value));
}

// Small integers, exact in bf16: what every rank sends, and what it must receive.
void check_collective(const std::string& kind, const RankContext& rank, double bytes) {
  const auto elements = static_cast<std::size_t>(bytes / 2);
  const auto size = static_cast<std::size_t>(rank.size);
  const std::size_t chunk = elements / size;
  std::vector<__nv_bfloat16> send(elements), expected;
  std::size_t received = elements;
  const auto r = static_cast<float>(rank.rank);
  const auto n = static_cast<float>(rank.size);
  if (kind == "all_reduce") {
    send = constant(elements, 1.0f);
    expected = constant(elements, n);
  } else if (kind == "all_gather") {
    send = constant(chunk, r);
    for (std::size_t j = 0; j < size; ++j) {
      const auto part = constant(chunk, static_cast<float>(j));
      expected.insert(expected.end(), part.begin(), part.end());
    }
    received = chunk * size;
  } else if (kind == "reduce_scatter") {
    send = constant(elements, 1.0f);
    expected = constant(chunk, n);
    received = chunk;
  } else if (kind == "all_to_all") {
    send.clear();
    for (std::size_t j = 0; j < size; ++j) {
      const auto part = constant(chunk, static_cast<float>(j) * n + r);
      send.insert(send.end(), part.begin(), part.end());
      const auto back = constant(chunk, r * n + static_cast<float>(j));
      expected.insert(expected.end(), back.begin(), back.end());
    }
    received = chunk * size;
  } else if (kind == "send_recv") {
    send = constant(elements, 3.0f);
    expected = rank.rank == 1 ? constant(elements, 3.0f) : std::vector<__nv_bfloat16>{};
    received = expected.size();
  } else {
    send = constant(elements, r + 1);
    expected = constant(elements, static_cast<float>((rank.rank + rank.size - 1) % rank.size) + 1);
  }
  const std::string what = fmt::format("checking {} on rank {}", kind, rank.rank);
  check_cuda(
      cudaMemcpyAsync(rank.send, send.data(), send.size() * 2, cudaMemcpyHostToDevice, rank.stream),
      what);
  check_cuda(cudaMemsetAsync(rank.receive, 0xff, static_cast<std::size_t>(bytes), rank.stream),
             what); // NaN poison
  launch_collective(kind, bytes, rank);
  std::vector<__nv_bfloat16> got(received);
  check_cuda(
      cudaMemcpyAsync(got.data(), rank.receive, received * 2, cudaMemcpyDeviceToHost, rank.stream),
      what);
  check_cuda(cudaStreamSynchronize(rank.stream), what);
  for (std::size_t i = 0; i < received; ++i) {
    if (__bfloat162float(got[i]) != __bfloat162float(expected[i])) {
      throw ExecutionError(fmt::format("{} on {} GPUs gave a wrong result on rank {}: element {} "
                                       "is {}, expected {}",
                                       kind, rank.size, rank.rank, i, __bfloat162float(got[i]),
                                       __bfloat162float(expected[i])));
    }
  }
}

std::vector<TimedCollective> time_collectives(const std::vector<double>& sizes,
                                              const CalibrationOptions& options) {
  const int gpus = options.local_gpus;
  std::vector<int> devices(static_cast<std::size_t>(gpus));
  for (int i = 0; i < gpus; ++i)
    devices[static_cast<std::size_t>(i)] = options.device + i;
  std::vector<ncclComm_t> comms(static_cast<std::size_t>(gpus));
  check_nccl(ncclCommInitAll(comms.data(), gpus, devices.data()), "creating NCCL communicators");
  const double largest = *std::max_element(sizes.begin(), sizes.end());
  const double check_bytes = 65536.0 * gpus;
  const std::size_t kinds = kCollectiveKinds.size();
  // times[kind][size][rank]: the rank's median
  std::vector<std::vector<std::vector<double>>> times(
      kinds, std::vector<std::vector<double>>(sizes.size(),
                                              std::vector<double>(static_cast<std::size_t>(gpus))));
  std::mutex failure_mutex;
  std::string failure;
  std::atomic<bool> aborted{false};
  std::barrier sync(gpus);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < gpus; ++rank) {
    threads.emplace_back([&, rank] {
      const auto index = static_cast<std::size_t>(rank);
      try {
        check_cuda(cudaSetDevice(devices[index]), "selecting a GPU");
        RankContext context{.rank = rank, .size = gpus, .comm = comms[index]};
        check_cuda(cudaStreamCreateWithFlags(&context.stream, cudaStreamNonBlocking),
                   "creating a stream");
        const auto buffer_bytes = static_cast<std::size_t>(std::max(largest, check_bytes));
        DeviceMemory send(buffer_bytes, "NCCL send buffer"),
            receive(buffer_bytes, "NCCL receive buffer");
        context.send = send.get<char>();
        context.receive = receive.get<char>();
        for (std::size_t kind = 0; kind < kinds; ++kind) {
          const std::string name = kCollectiveKinds[kind];
          check_collective(name, context, check_bytes);
          check_cuda(kernels::fill_bf16(send.get<__nv_bfloat16>(), buffer_bytes / 2,
                                        static_cast<std::uint32_t>(rank + 1), 1.0f, context.stream),
                     "filling the send buffer");
          for (std::size_t size = 0; size < sizes.size(); ++size) {
            if (rank == 0 && options.progress) {
              options.progress(fmt::format("NCCL {} {}/{}: {} bytes on {} GPUs", name, size + 1,
                                           sizes.size(), sizes[size], gpus));
            }
            sync.arrive_and_wait();
            times[kind][size][index] = time_on_stream(
                context.stream, name, [&] { launch_collective(name, sizes[size], context); });
          }
        }
        check_cuda(cudaStreamDestroy(context.stream), "destroying a stream");
      } catch (const std::exception& error) {
        {
          const std::lock_guard lock(failure_mutex);
          if (failure.empty())
            failure = error.what();
        }
        // The other ranks wait in NCCL (or at the barrier) for this one: end their calls.
        if (!aborted.exchange(true)) {
          for (ncclComm_t comm : comms)
            ncclCommAbort(comm);
        }
        sync.arrive_and_drop();
      }
    });
  }
  for (std::thread& thread : threads)
    thread.join();
  if (!failure.empty())
    throw ExecutionError(failure);
  for (ncclComm_t comm : comms)
    ncclCommDestroy(comm);
  std::vector<TimedCollective> timed;
  for (std::size_t kind = 0; kind < kinds; ++kind) {
    const std::string name = kCollectiveKinds[kind];
    for (std::size_t size = 0; size < sizes.size(); ++size) {
      const std::vector<double>& ranks = times[kind][size];
      timed.push_back({.kind = name,
                       .gpus = name == "send_recv" ? 2 : gpus,
                       .bytes = sizes[size],
                       .time_s = *std::max_element(ranks.begin(), ranks.end())});
    }
  }
  return timed;
}

} // namespace

CalibrationRun run_calibration_sweep(const CalibrationGrid& grid,
                                     const CalibrationOptions& options) {
  int visible = 0;
  if (cudaGetDeviceCount(&visible) != cudaSuccess)
    visible = 0;
  if (options.local_gpus < 1)
    throw InputError("--local-gpus",
                     fmt::format("{} is not a positive number", options.local_gpus));
  if (options.device < 0 || options.device + options.local_gpus > visible) {
    if (options.local_gpus == 1) {
      throw InputError("--device",
                       fmt::format("GPU {} needed but {} visible", options.device, visible));
    }
    throw InputError("--local-gpus", fmt::format("GPUs {}-{} needed but {} visible", options.device,
                                                 options.device + options.local_gpus - 1, visible));
  }
  check_cuda(cudaSetDevice(options.device), "selecting a GPU");
  cudaDeviceProp properties{};
  check_cuda(cudaGetDeviceProperties(&properties, options.device), "reading the GPU's properties");
  const Nvml nvml(options.device);

  CalibrationRun run;
  run.device_name = properties.name;
  run.gpus = options.local_gpus;
  int runtime_version = 0, nccl_version = 0;
  check_cuda(cudaRuntimeGetVersion(&runtime_version), "reading the CUDA version");
  check_nccl(ncclGetVersion(&nccl_version), "reading the NCCL version");

  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "creating a stream");
  {
    GemmBench bench(grid.gemms, stream, static_cast<std::size_t>(properties.l2CacheSize));
    int cublas_version = 0;
    check_cublas(cublasGetVersion(bench.handle(), &cublas_version), "reading the cuBLAS version");
    run.software = fmt::format("CUDA runtime {}, cuBLAS {}, NCCL {}, driver {}",
                               version_text(runtime_version, 1000, 10),
                               version_text(cublas_version, 10000, 100),
                               version_text(nccl_version, 10000, 100), nvml.driver_version());
    bench.check(false);
    bench.check(true);
    if (options.progress)
      options.progress("SM clock under load: 8192^3 GEMMs back to back for 2 s");
    run.load_sm_mhz = bench.load_clock_mhz(nvml);
    run.max_sm_mhz = nvml.max_sm_mhz();
    std::size_t done = 0;
    for (const CalibrationGemmShape& shape : grid.gemms) {
      ++done;
      if (options.progress && (done % 16 == 1 || done == grid.gemms.size())) {
        options.progress(
            fmt::format("GEMM bf16 and fp32-accumulate {}/{}", done, grid.gemms.size()));
      }
      const double bf16_s = bench.time_s(shape, false);
      run.gemm_bf16.push_back({shape, bf16_s, nvml.sm_mhz()});
      const double accumulate_s = bench.time_s(shape, true);
      run.gemm_bf16_accumulate_fp32.push_back({shape, accumulate_s, nvml.sm_mhz()});
    }
  }
  run.attention = time_attention(grid.attention, stream, nvml, options);
  if (options.progress)
    options.progress("memory: device copy and streaming kernel, 1 GiB");
  time_memory(run, stream);
  check_cuda(cudaStreamDestroy(stream), "destroying a stream");
  if (options.local_gpus >= 2 && !grid.collective_bytes.empty())
    run.collectives = time_collectives(grid.collective_bytes, options);
  return run;
}

} // namespace foldplan::runtime
