// `foldplan calibrate`: what it measures on the GPUs at hand, and how the timings become a
// calibration file (foldplan.calibration/1, topologies/gpu_calibration.hpp). Host-only here: the
// grid of shapes, the clock normalisation, merging with a base calibration and the provenance;
// run_calibration_sweep (calibration_gpu.cpp; calibration_no_gpu.cpp refuses) does the timing.
//
// The grid is the shipped tables' own (topologies/calibration/h100.json): bf16 GEMMs m ∈ {64 …
// 16384} × its 59 (n, k) pairs — small-m expert GEMMs included — twice, with a bf16 output and
// accumulating into fp32; foldplan's attention kernels at its "foldplan" shapes; a copy and a
// streaming kernel; NCCL over 4 KiB … 1 GiB in steps of ×4 when there are two GPUs or more.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kernels/attention_dims.hpp"
#include "topologies/cluster_spec.hpp"
#include "topologies/gpu_calibration.hpp"

namespace foldplan::runtime {

struct CalibrationGemmShape {
  std::int64_t m = 0, n = 0, k = 0; // C[m,n] (+)= A[m,k]·B[k,n]
  bool operator==(const CalibrationGemmShape&) const = default;
};

struct CalibrationAttentionShape {
  std::int64_t heads = 0, kv_heads = 0, seq = 0, head_dim = 0; // batch 1, seq_q = seq_kv
  bool causal = true;
  bool operator==(const CalibrationAttentionShape&) const = default;
};

// The kernels' dims of one shape (batch 1, one head dim for q·k and v).
kernels::AttentionDims attention_dims_of(const CalibrationAttentionShape& shape);

struct CalibrationGrid {
  std::vector<CalibrationGemmShape> gemms; // each timed with a bf16 and an fp32-accumulate output
  std::vector<CalibrationAttentionShape> attention;
  std::vector<double> collective_bytes; // message sizes as nccl-tests counts them
};

// The full sweep (531 GEMM shapes, the 21 foldplan attention shapes, 10 message sizes), or with
// `quick` a few of each (for tests and a fast check: 4096³ and small-m expert GEMMs among them).
CalibrationGrid calibration_grid(bool quick);

// What the GPU sweep returns: device times (median of the timed iterations) and the SM clock read
// through NVML right after each point (0 when NVML could not be read).
struct TimedGemm {
  CalibrationGemmShape shape;
  double time_s = 0;
  double sm_mhz = 0;
};
struct TimedAttention {
  CalibrationAttentionShape shape;
  double forward_s = 0, backward_s = 0;
  double forward_sm_mhz = 0, backward_sm_mhz = 0;
};
struct TimedCollective {
  std::string kind; // as CollectiveMeasurement::kind
  std::int64_t gpus = 0;
  double bytes = 0;
  double time_s = 0; // the slowest rank's median
};
struct CalibrationRun {
  std::string device_name; // as CUDA names it, e.g. "NVIDIA H100 80GB HBM3"
  std::string software;    // CUDA runtime, cuBLAS, NCCL and driver versions
  std::vector<TimedGemm> gemm_bf16, gemm_bf16_accumulate_fp32;
  std::vector<TimedAttention> attention;
  double copy_Bps = 0, elementwise_Bps = 0; // bytes read + written per second
  std::vector<TimedCollective> collectives;
  int gpus = 1;
  // The SM clock under a training-like load: the median NVML reading over ~2 s of large GEMMs run
  // back to back; and the GPU's maximum SM clock. 0 when NVML could not be read.
  double load_sm_mhz = 0, max_sm_mhz = 0;
};

struct CalibrationOptions {
  int local_gpus = 1;
  int device = 0; // the first GPU used (--device); GPUs device … device + local_gpus − 1
  // One line per step of progress ("GEMM bf16 123/531"); empty: silent.
  std::function<void(const std::string&)> progress;
};

// Times `grid` on the GPUs; InputError before any measurement (no CUDA in this build, too few
// GPUs), ExecutionError on a CUDA/cuBLAS/NCCL failure or a collective that gave a wrong result.
CalibrationRun run_calibration_sweep(const CalibrationGrid& grid,
                                     const CalibrationOptions& options);

// How to_calibration.py brings a compute-bound point to the training-load clock: a point measured
// above `load_mhz` is scaled by load_mhz / point_mhz; at or below it, or with an unknown clock (0),
// it is kept; a GEMM below the ridge point (FLOP per byte; 0: none) streams from HBM and is kept.
double clock_scale(double point_mhz, double load_mhz, double intensity = 0, double ridge = 0);
// 2mnk over the bytes moved once: bf16 A and B, and C at `output_bytes_per_element` (2 for a bf16
// output, 8 for an fp32 C read and written).
double gemm_intensity(const CalibrationGemmShape& shape, double output_bytes_per_element = 2);
// FLOP per byte above which a bf16 GEMM is compute-bound at the load clock: the dense peak scaled
// by load_mhz / max_mhz, over the datasheet HBM bandwidth (as to_calibration.py).
double bf16_ridge_point(const GpuSpec& gpu, double load_mhz, double max_mhz);

// The cluster presets' GpuSpec name of a CUDA device name ("NVIDIA H100 80GB HBM3" →
// "H100-SXM5-80GB", "NVIDIA H200" → "H200-SXM5-141GB"), or nullopt when foldplan knows none.
std::optional<std::string> preset_gpu_name(const std::string& cuda_device_name);
// The GpuSpec of that name from the cluster presets; InputError naming `field` when none has it.
GpuSpec preset_gpu(const std::string& name, const std::string& field);

// bus bandwidth / algorithm bandwidth, as nccl-tests: 2(n−1)/n for all_reduce, (n−1)/n for
// all_gather, reduce_scatter and all_to_all, 1 for send_recv (per direction).
double bus_bandwidth_factor(const std::string& kind, std::int64_t gpus);

struct CalibrationSource {
  std::string gpu;     // the GpuSpec name
  std::string date;    // UTC, YYYY-MM-DD
  std::string command; // the exact argv
  bool raw = false;    // keep compute-bound points as measured (no clock normalisation)
};

// The measured calibration: TFLOP/s and busbw from the timings, compute-bound points normalised to
// the load clock; then every point of `base` (if any) the sweep did not measure is carried — fp8
// GEMMs, other attention backends, shapes outside a --quick grid, collectives of other GPU counts
// — and measured.notes say exactly what was measured and what carried. Validated.
GpuCalibration assemble_calibration(const CalibrationRun& run, const CalibrationSource& source,
                                    const std::optional<GpuCalibration>& base,
                                    const std::string& base_name);

} // namespace foldplan::runtime
