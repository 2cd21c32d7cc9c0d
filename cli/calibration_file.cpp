// The grid `foldplan calibrate` times, and how its timings become a calibration file.
#include "cli/calibration_file.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/errors.hpp"
#include "kernels/attention_dims.hpp"

namespace foldplan::cli {
using runtime::attention_dims_of;
using runtime::CalibrationAttentionShape;
using runtime::TimedAttention;
using runtime::TimedCollective;
using runtime::TimedGemm;

namespace {

// The GPU whose shipped table fixes the grid: its bf16 (n, k) pairs and foldplan attention shapes.
constexpr const char* kGridSource = "H100-SXM5-80GB";
constexpr std::int64_t kSmallestM = 64, kLargestM = 16384;
constexpr double kSmallestMessage = 4096, kLargestMessage = 1024.0 * 1024 * 1024;
constexpr double kMessageStep = 4;
constexpr double kBf16Bytes = 2, kFp32Bytes = 4;

double as_double(std::int64_t value) {
  return static_cast<double>(value);
}

GpuCalibration grid_source() {
  std::optional<GpuCalibration> source = builtin_calibration(kGridSource);
  if (!source)
    throw std::logic_error("the shipped H100 calibration is missing");
  return *source;
}

CalibrationAttentionShape attention_shape_of(const AttentionMeasurement& point) {
  return {point.heads, point.kv_heads, point.seq, point.head_dim, point.causal};
}

using GemmKey = std::tuple<std::int64_t, std::int64_t, std::int64_t>;
using AttentionKey = std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                std::int64_t, bool, std::string>;
using CollectiveKey = std::tuple<std::string, std::int64_t, std::string, double>;

GemmKey key_of(const GemmMeasurement& point) {
  return {point.m, point.n, point.k};
}
AttentionKey key_of(const AttentionMeasurement& point) {
  return {point.batch,    point.heads,  point.kv_heads, point.seq,
          point.head_dim, point.causal, point.backend};
}
CollectiveKey key_of(const CollectiveMeasurement& point) {
  return {point.kind, point.gpus, point.link, point.bytes};
}

// Appends base's points whose key the measured list lacks; returns how many.
template <typename Point>
std::size_t carry_missing(std::vector<Point>& measured, const std::vector<Point>& base) {
  std::set<decltype(key_of(std::declval<const Point&>()))> keys;
  for (const Point& point : measured)
    keys.insert(key_of(point));
  std::size_t carried = 0;
  for (const Point& point : base) {
    if (keys.insert(key_of(point)).second) {
      measured.push_back(point);
      ++carried;
    }
  }
  return carried;
}

std::string count_by_backend(const std::vector<AttentionMeasurement>& points, std::size_t from) {
  std::map<std::string, int> counts;
  for (std::size_t i = from; i < points.size(); ++i)
    ++counts[points[i].backend];
  std::vector<std::string> parts;
  for (const auto& [backend, count] : counts)
    parts.push_back(fmt::format("{} {}", count, backend));
  return parts.empty() ? "0" : fmt::format("{}", fmt::join(parts, ", "));
}

GemmMeasurement gemm_point(const TimedGemm& timed, double scale) {
  const CalibrationGemmShape& shape = timed.shape;
  const double flops = 2.0 * as_double(shape.m) * as_double(shape.n) * as_double(shape.k);
  return {shape.m, shape.n, shape.k, flops / timed.time_s / 1e12 * scale};
}

} // namespace

CalibrationGrid calibration_grid(bool quick) {
  const GpuCalibration source = grid_source();
  CalibrationGrid grid;
  std::set<std::pair<std::int64_t, std::int64_t>> pairs;
  for (const GemmMeasurement& point : source.gemm_bf16)
    pairs.emplace(point.n, point.k);
  // --quick: a dense layer's 4096³, an MoE expert's up-projection and down-projection at a few
  // tokens per expert, and a square 1024 one.
  const std::set<std::pair<std::int64_t, std::int64_t>> quick_pairs = {
      {4096, 4096}, {14336, 4096}, {4096, 14336}, {1024, 1024}};
  const std::vector<std::int64_t> quick_m = {64, 256, 4096};
  for (const auto& [n, k] : pairs) {
    if (quick && !quick_pairs.contains({n, k}))
      continue;
    for (std::int64_t m = kSmallestM; m <= kLargestM; m *= 2) {
      if (quick && std::find(quick_m.begin(), quick_m.end(), m) == quick_m.end())
        continue;
      grid.gemms.push_back({m, n, k});
    }
  }
  for (const AttentionMeasurement& point : source.attention) {
    if (point.backend != "foldplan" || point.batch != 1)
      continue;
    const CalibrationAttentionShape shape = attention_shape_of(point);
    if (quick && !(shape.kv_heads == 8 && shape.head_dim == 128 && shape.causal &&
                   (shape.seq == 1024 || shape.seq == 4096)))
      continue;
    grid.attention.push_back(shape);
  }
  for (double bytes = kSmallestMessage; bytes <= kLargestMessage; bytes *= kMessageStep) {
    if (quick && bytes != kSmallestMessage && bytes != 1024.0 * 1024 && bytes != 64.0 * 1024 * 1024)
      continue;
    grid.collective_bytes.push_back(bytes);
  }
  return grid;
}

double clock_scale(double point_mhz, double load_mhz, double intensity, double ridge) {
  if (load_mhz <= 0 || point_mhz <= 0)
    return 1.0;
  if (ridge > 0 && intensity < ridge)
    return 1.0;
  return std::min(1.0, load_mhz / point_mhz);
}

double gemm_intensity(const CalibrationGemmShape& shape, double output_bytes_per_element) {
  const double m = as_double(shape.m), n = as_double(shape.n), k = as_double(shape.k);
  return 2.0 * m * n * k / (kBf16Bytes * (m * k + k * n) + output_bytes_per_element * m * n);
}

double bf16_ridge_point(const GpuSpec& gpu, double load_mhz, double max_mhz) {
  const double clock_fraction = load_mhz > 0 && max_mhz > 0 ? load_mhz / max_mhz : 1.0;
  return gpu.bf16_flops * clock_fraction / gpu.hbm_bw_Bps;
}

std::optional<std::string> preset_gpu_name(const std::string& cuda_device_name) {
  // The names CUDA gives the SXM boards the presets describe (PCIe and NVL boards differ in
  // clocks and power, so they are not these).
  static const std::map<std::string, std::string> kNames = {
      {"NVIDIA H100 80GB HBM3", "H100-SXM5-80GB"}, {"NVIDIA H200", "H200-SXM5-141GB"},
      {"NVIDIA H800", "H800-SXM5-80GB"},           {"NVIDIA A100-SXM4-80GB", "A100-SXM4-80GB"},
      {"NVIDIA GB200", "B200-in-GB200-186GB"},
  };
  const auto it = kNames.find(cuda_device_name);
  if (it == kNames.end())
    return std::nullopt;
  return it->second;
}

GpuSpec preset_gpu(const std::string& name, const std::string& field) {
  std::set<std::string> known;
  for (const EmbeddedFile& file : cluster_presets()) {
    if (file.name.empty())
      continue;
    const GpuSpec gpu = load_cluster(std::string(file.name)).gpu;
    if (gpu.name == name)
      return gpu;
    known.insert(gpu.name);
  }
  throw InputError(field, fmt::format("\"{}\" is not the GPU of any cluster preset ({})", name,
                                      fmt::join(known, ", ")));
}

double bus_bandwidth_factor(const std::string& kind, std::int64_t gpus) {
  const double n = as_double(gpus);
  if (kind == "all_reduce")
    return 2.0 * (n - 1) / n;
  if (kind == "all_gather" || kind == "reduce_scatter" || kind == "all_to_all")
    return (n - 1) / n;
  return 1.0; // send_recv, send_recv_bidirectional: per direction
}

GpuCalibration assemble_calibration(const CalibrationRun& run, const CalibrationSource& source,
                                    const std::optional<GpuCalibration>& base,
                                    const std::string& base_name) {
  const GpuSpec gpu = preset_gpu(source.gpu, "--gpu");
  const double load_mhz = source.raw ? 0.0 : run.load_sm_mhz;
  const double ridge = bf16_ridge_point(gpu, run.load_sm_mhz, run.max_sm_mhz);

  GpuCalibration calibration;
  calibration.gpu = source.gpu;
  std::size_t scaled = 0;
  const auto scale_of = [&](double point_mhz, double intensity) {
    const double scale = clock_scale(point_mhz, load_mhz, intensity, ridge);
    scaled += scale < 1.0 ? 1 : 0;
    return scale;
  };
  for (const TimedGemm& timed : run.gemm_bf16) {
    calibration.gemm_bf16.push_back(
        gemm_point(timed, scale_of(timed.sm_mhz, gemm_intensity(timed.shape, kBf16Bytes))));
  }
  for (const TimedGemm& timed : run.gemm_bf16_accumulate_fp32) {
    calibration.gemm_bf16_accumulate_fp32.push_back(
        gemm_point(timed, scale_of(timed.sm_mhz, gemm_intensity(timed.shape, 2 * kFp32Bytes))));
  }
  // Fused attention is compute-bound at every measured length: no ridge test.
  constexpr double kComputeBound = std::numeric_limits<double>::infinity();
  for (const TimedAttention& timed : run.attention) {
    const kernels::AttentionDims dims = attention_dims_of(timed.shape);
    calibration.attention.push_back(
        {.batch = 1,
         .heads = timed.shape.heads,
         .kv_heads = timed.shape.kv_heads,
         .seq = timed.shape.seq,
         .head_dim = timed.shape.head_dim,
         .causal = timed.shape.causal,
         .backend = "foldplan",
         .fwd_tflops = kernels::attention_forward_flops(dims) / timed.forward_s / 1e12 *
                       scale_of(timed.forward_sm_mhz, kComputeBound),
         .bwd_tflops = kernels::attention_backward_flops(dims) / timed.backward_s / 1e12 *
                       scale_of(timed.backward_sm_mhz, kComputeBound)});
  }
  calibration.copy_Bps = run.copy_Bps;
  calibration.stream_Bps = run.stream_Bps;
  // elementwise_Bps is a kernel of three reads to a write (PyTorch's addcmul in the shipped files),
  // which Megatron's memory-bound ops are priced with; the sweep's kernel is half read, half
  // written. So the base's figure is kept, and only without a base does the stream figure stand in.
  calibration.elementwise_Bps = base ? base->elementwise_Bps : run.stream_Bps;
  for (const TimedCollective& timed : run.collectives) {
    calibration.collectives.push_back(
        {.kind = timed.kind,
         .gpus = timed.gpus,
         .link = "nvlink",
         .bytes = timed.bytes,
         .time_s = timed.time_s,
         .busbw_Bps = timed.bytes / timed.time_s * bus_bandwidth_factor(timed.kind, timed.gpus)});
  }

  const std::size_t measured_attention = calibration.attention.size();
  std::string carried = "nothing (--base none)";
  if (base) {
    if (base->gpu != source.gpu) {
      throw InputError("--base", fmt::format("{} is a calibration of {}, not of {}", base_name,
                                             base->gpu, source.gpu));
    }
    const std::size_t bf16 = carry_missing(calibration.gemm_bf16, base->gemm_bf16);
    const std::size_t accumulate =
        carry_missing(calibration.gemm_bf16_accumulate_fp32, base->gemm_bf16_accumulate_fp32);
    calibration.gemm_fp8 = base->gemm_fp8;
    carry_missing(calibration.attention, base->attention);
    const std::size_t collectives = carry_missing(calibration.collectives, base->collectives);
    carried = fmt::format("from {} (measured {} by: {}): gemm.bf16 {}, "
                          "gemm.bf16_accumulate_fp32 {}, gemm.fp8 {}, attention {}, "
                          "collectives {}, memory.elementwise_Bps",
                          base_name, base->measured.date, base->measured.command, bf16, accumulate,
                          base->gemm_fp8.size(),
                          count_by_backend(calibration.attention, measured_attention), collectives);
  }

  const std::string clock =
      run.load_sm_mhz > 0
          ? fmt::format(
                "Training-load SM clock {:.0f} MHz (median NVML reading over ~2 s of 8192^3 bf16 "
                "GEMMs back to back; max {:.0f} MHz). {}",
                run.load_sm_mhz, run.max_sm_mhz,
                source.raw ? "--raw: every point kept as measured."
                           : fmt::format("Compute-bound GEMM and attention TFLOP/s measured above "
                                         "it are scaled down to it (tflops x {:.0f} / the SM clock "
                                         "read after the point; {} points); GEMMs below the ridge "
                                         "point ({:.0f} FLOP/byte, HBM-bound) are kept.",
                                         run.load_sm_mhz, scaled, ridge))
          : std::string("NVML could not be read: no clock normalisation, points as measured.");
  const std::string collectives_note =
      run.gpus >= 2
          ? fmt::format("NCCL on {} GPUs, one thread per GPU, bf16, {} points; bytes and busbw "
                        "as nccl-tests count them; time_s = the slowest rank's median; each "
                        "collective checked for a correct result before timing",
                        run.gpus, run.collectives.size())
          : std::string("one GPU: no collectives measured");
  calibration.measured = {
      .date = source.date,
      .device = run.device_name,
      .software = run.software,
      .command = source.command,
      .notes = fmt::format(
          "foldplan calibrate (runtime/calibration_gpu.cpp): CUDA events, median of >=20 timed "
          "iterations after warm-up, random data, clocks left as found. Measured here: gemm.bf16 "
          "{} and gemm.bf16_accumulate_fp32 {} shapes (cublasGemmEx NN, the "
          "runtime's call; bf16 output beta 0, or fp32 C with beta 1; CUDA-graph replays rotating "
          "over input sets >=3x the L2), attention {} foldplan points (kernels/attention_*.cu), "
          "memory (copy_Bps: cudaMemcpyAsync device to device of 1 GiB; stream_Bps: "
          "kernels/stream_bytes over 1 GiB buffers, the runtime's memory-bound ops; bytes read + "
          "written{}), {}. Carried {}. {}",
          run.gemm_bf16.size(), run.gemm_bf16_accumulate_fp32.size(), run.attention.size(),
          base ? "" : "; elementwise_Bps: the stream_Bps figure, no base to carry it from",
          collectives_note, carried, clock)};
  validate_calibration(calibration);
  return calibration;
}

} // namespace foldplan::cli
